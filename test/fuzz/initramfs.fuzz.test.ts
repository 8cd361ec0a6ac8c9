import { expect } from 'chai';
import fc from 'fast-check';
import { placeInitramfs } from '../../plugins/x86/boot/initramfs.js';
import { X86BootError } from '../../plugins/x86/errors.js';
import { fakeBzImage, fakeElfKernel } from '../../plugins/x86/testing.js';
import { LOADER_RAM, loadAndCheck } from './loader-harness.js';
import { Outcomes, expectOnly, fuzzParams, fuzzRuns, fuzzTimeout, fuzzTitle, reportOutcomes } from './support.js';

const U64 = (1n << 64n) - 1n;
const edgeBig = fc.oneof(
  fc.constantFrom(0n, 1n, 0xfffn, 0x1000n, 0x10_0000n, 0x7fff_ffffn, 0xffff_ffffn, 1n << 32n, U64),
  fc.bigInt({ min: 0n, max: 1n << 33n }),
  fc.bigInt({ min: 0n, max: U64 }),
);

describe('fuzz: kernel loader, initramfs placement', function () {
  this.timeout(fuzzTimeout(0.5));

  it(fuzzTitle('placeInitramfs: a page-aligned place above the kernel and below both limits, or X86BootError'), () => {
    const outcomes = new Outcomes();
    fc.assert(
      fc.property(edgeBig, edgeBig, edgeBig, edgeBig, (size, lowRamEnd, addrMax, kernelEnd) => {
        let at = -1n;
        const err = expectOnly([X86BootError], () => {
          at = placeInitramfs(size, { lowRamEnd, addrMax, kernelEnd });
        });
        if (err) {
          outcomes.add((err as X86BootError).kind);
          return;
        }
        outcomes.add('placed');
        expect(size > 0n).to.equal(true);
        expect(at % 4096n).to.equal(0n);
        expect(at >= kernelEnd, 'above the kernel').to.equal(true);
        expect(at + size <= lowRamEnd, 'below the end of RAM').to.equal(true);
        expect(at + size - 1n <= addrMax, 'below initrd_addr_max').to.equal(true);
      }),
      fuzzParams(),
    );
    reportOutcomes('initramfs placement', outcomes, ['placed', 'InitramfsTooLarge']);
  });

  // a tenth of the cases: each copies up to 14 MiB
  const loadRuns = Math.max(1, Math.floor(fuzzRuns() / 10));
  it(fuzzTitle('loadLinux with initramfs sizes around the room left: inside RAM, above the kernel', loadRuns), () => {
    const outcomes = new Outcomes();
    const kernels = {
      bzimage: (max: number) => fakeBzImage({ kernelSize: 4096, initSize: 0x10_0000, initrdAddrMax: max }),
      pvh: () => fakeElfKernel({ segments: [{ paddr: 0x100_0000n, data: new Uint8Array(512), memsz: 0x20_0000n }] }),
    };
    const room = Number(LOADER_RAM) - 0x120_0000; // above a kernel ending at 18 MiB
    const sizes = fc.oneof(fc.integer({ min: 1, max: 8192 }), fc.integer({ min: room - 8192, max: room + 8192 }));
    const cases = fc.record({
      kind: fc.constantFrom<'bzimage' | 'pvh'>('bzimage', 'pvh'),
      size: sizes,
      initrdAddrMax: fc.oneof(fc.constant(0x7fff_ffff), fc.integer({ min: 0, max: Number(LOADER_RAM) + 0x1000 })),
    });
    const buffer = new Uint8Array(room + 8192).fill(0x3c); // shared: the cases only take views of it
    fc.assert(
      fc.property(cases, (c) => {
        const kernel = c.kind === 'pvh' ? kernels.pvh() : kernels.bzimage(c.initrdAddrMax);
        loadAndCheck(
          { kernel, initramfs: buffer.subarray(0, c.size), cmdline: 'quiet', protocol: 'auto', vcpus: 1 },
          outcomes,
        );
      }),
      fuzzParams({ numRuns: loadRuns }),
    );
    reportOutcomes('initramfs via loadLinux', outcomes, ['loaded', 'InitramfsTooLarge']);
  });
});
