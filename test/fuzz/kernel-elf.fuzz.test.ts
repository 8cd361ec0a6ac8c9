import fc from 'fast-check';
import { fakeElfKernel, type FakeElfSegment } from '../../plugins/x86/testing.js';
import { LOADER_RAM, edits, loadAndCheck, mutate } from './loader-harness.js';
import { Outcomes, fuzzParams, fuzzTimeout, fuzzTitle, reportOutcomes } from './support.js';

/** Physical addresses around the interesting edges: below 1 MiB, inside RAM, its end, 4 GiB, 2^64. */
const paddr = fc.oneof(
  fc.constantFrom(
    0n,
    0x9_f000n,
    0x10_0000n,
    0x100_0000n,
    LOADER_RAM - 0x1000n,
    LOADER_RAM,
    1n << 32n,
    (1n << 64n) - 0x1000n,
  ),
  fc.bigInt({ min: 0x10_0000n, max: LOADER_RAM + 0x1_0000n }),
  fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
);
const segment: fc.Arbitrary<FakeElfSegment> = fc
  .record({
    paddr,
    data: fc.integer({ min: 0, max: 2048 }).map((n) => new Uint8Array(n).fill(0xc3)),
    memsz: fc.option(
      fc.oneof(fc.bigInt({ min: 0n, max: 0x4_0000n }), fc.constantFrom(LOADER_RAM, 1n << 40n, (1n << 64n) - 1n)),
      { nil: undefined },
    ),
  })
  .map((s) => ({ ...s, memsz: s.memsz === undefined ? undefined : s.memsz }));

/** Offsets into the ELF header / first program headers worth aiming 64-bit values at. */
const HEADER_FIELDS = [16, 18, 24, 32, 54, 56, 64, 72, 80, 88, 96, 104, 112, 120, 128, 136];

const hostileElf = fc
  .record({
    segments: fc.array(segment, { minLength: 1, maxLength: 4 }),
    pvhEntry: fc.oneof(
      fc.constant(null),
      fc.constantFrom(0x100_0100n, 0xffff_ffffn, 1n << 32n),
      fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
    ),
    pvhEntrySize: fc.constantFrom<4 | 8>(4, 8),
    fields: fc.oneof(
      fc.constant<[number, bigint, number][]>([]),
      fc.array(
        fc.tuple(
          fc.constantFrom(...HEADER_FIELDS),
          fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
          fc.constantFrom(1, 2, 4, 8),
        ),
        { maxLength: 3 },
      ),
    ),
    bytes: fc.oneof(fc.constant<[number, number][]>([]), edits),
    keep: fc.oneof(
      { weight: 4, arbitrary: fc.constant(undefined) },
      { weight: 1, arbitrary: fc.integer({ min: 0, max: 12_000 }) },
    ),
    initramfs: fc.option(fc.integer({ min: 1, max: 4096 }), { nil: undefined }),
    protocol: fc.constantFrom<'auto' | 'pvh' | 'bzimage'>('auto', 'auto', 'pvh', 'bzimage'),
  })
  .map((c) => {
    const image = fakeElfKernel({ segments: c.segments, pvhEntry: c.pvhEntry, pvhEntrySize: c.pvhEntrySize });
    const dv = new DataView(image.buffer);
    for (const [at, v, width] of c.fields) {
      if (at + width > image.length) continue;
      if (width === 8) dv.setBigUint64(at, v, true);
      else if (width === 4) dv.setUint32(at, Number(v & 0xffff_ffffn), true);
      else if (width === 2) dv.setUint16(at, Number(v & 0xffffn), true);
      else dv.setUint8(at, Number(v & 0xffn));
    }
    return { ...c, image: mutate(image, c.bytes, c.keep) };
  });

describe('fuzz: kernel loader, ELF vmlinux (PVH)', function () {
  this.timeout(fuzzTimeout(0.5));
  it(fuzzTitle('hostile ELF headers, segments and PVH notes: only X86BootError, nothing outside guest RAM'), () => {
    const outcomes = new Outcomes();
    fc.assert(
      fc.property(hostileElf, (c) => {
        loadAndCheck(
          {
            kernel: c.image,
            cmdline: 'console=ttyS0',
            protocol: c.protocol,
            vcpus: 1,
            initramfs: c.initramfs === undefined ? undefined : new Uint8Array(c.initramfs).fill(0xa5),
          },
          outcomes,
        );
      }),
      fuzzParams(),
    );
    reportOutcomes('ELF/PVH', outcomes, ['loaded', 'TruncatedKernel', 'KernelOutOfMemory', 'NoPvhEntry'], 5);
  });

  it('a PT_NOTE segment whose note name is as long as the segment is parsed without exhausting the stack', () => {
    // found by reading the parser while writing this target: the note name was spread into
    // String.fromCharCode, which throws RangeError for names of a few hundred thousand bytes
    const outcomes = new Outcomes();
    const image = fakeElfKernel({ segments: [{ paddr: 0x100_0000n, data: new Uint8Array(600_000) }], pvhEntry: null });
    const dv = new DataView(image.buffer);
    // turn the PT_LOAD into a PT_NOTE over the data: one note with a name of almost all of it
    const ph = 64,
      dataOff = Number(dv.getBigUint64(ph + 8, true));
    dv.setUint32(ph, 4, true);
    dv.setUint32(dataOff, 599_000, true);
    dv.setUint32(dataOff + 4, 0, true);
    dv.setUint32(dataOff + 8, 18, true);
    loadAndCheck({ kernel: image, cmdline: '', protocol: 'auto', vcpus: 1 }, outcomes);
    reportOutcomes('ELF long note', outcomes, [], 1);
  });
});
