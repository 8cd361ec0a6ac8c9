import fc from 'fast-check';
import { Hdr } from '../../plugins/x86/boot/bzimage.js';
import { fakeBzImage } from '../../plugins/x86/testing.js';
import { ACPI_START, x86AcpiContribution } from '../../plugins/x86/platform/acpi.js';
import { MPTABLE_MAX_VCPUS } from '../../plugins/x86/platform/mptable.js';
import { AcpiTableSet } from '../../plugins/acpi/table-set.js';
import { edits, loadAndCheck, mutate, u32Field } from './loader-harness.js';
import { Outcomes, fuzzParams, fuzzTimeout, fuzzTitle, reportOutcomes } from './support.js';

/** Header fields worth aiming at, with their width. */
const FIELDS: [number, 1 | 2 | 4][] = [
  [Hdr.SETUP_SECTS, 1],
  [Hdr.SYSSIZE, 4],
  [Hdr.BOOT_FLAG, 2],
  [Hdr.JUMP + 1, 1],
  [Hdr.VERSION, 2],
  [Hdr.LOADFLAGS, 1],
  [Hdr.INITRD_ADDR_MAX, 4],
  [Hdr.KERNEL_ALIGNMENT, 4],
  [Hdr.RELOCATABLE_KERNEL, 1],
  [Hdr.XLOADFLAGS, 2],
  [Hdr.CMDLINE_SIZE, 4],
  [Hdr.PREF_ADDRESS, 4],
  [Hdr.PREF_ADDRESS + 4, 4],
  [Hdr.INIT_SIZE, 4],
];

const hostileBzImage = fc
  .record({
    kernelSize: fc.integer({ min: 1, max: 8192 }),
    setupSects: fc.integer({ min: 0, max: 8 }),
    fields: fc.oneof(
      fc.constant<[[number, 1 | 2 | 4], number][]>([]),
      fc.array(fc.tuple(fc.constantFrom(...FIELDS), u32Field), { maxLength: 4 }),
    ),
    bytes: fc.oneof(fc.constant<[number, number][]>([]), edits),
    keep: fc.oneof(
      { weight: 4, arbitrary: fc.constant(undefined) },
      { weight: 1, arbitrary: fc.integer({ min: 0, max: 16_384 }) },
    ),
    cmdline: fc.oneof(
      fc.string({ maxLength: 40 }),
      fc.constant('console=ttyS0 panic=-1'),
      fc.string({ minLength: 2000, maxLength: 2100 }),
    ),
    initramfs: fc.option(fc.integer({ min: 1, max: 4096 }), { nil: undefined }),
    vcpus: fc.oneof(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 0, max: 300 })),
    acpi: fc.boolean(),
  })
  .map((c) => {
    const image = fakeBzImage({ kernelSize: c.kernelSize, setupSects: c.setupSects, initSize: 0x10_0000 });
    const dv = new DataView(image.buffer);
    for (const [[at, width], v] of c.fields) {
      if (at + width > image.length) continue;
      if (width === 1) dv.setUint8(at, v & 0xff);
      else if (width === 2) dv.setUint16(at, v & 0xffff, true);
      else dv.setUint32(at, v, true);
    }
    return { ...c, image: mutate(image, c.bytes, c.keep) };
  });

/** The tables the machine would build (a count the MADT cannot number is the MP table's refusal). */
function acpiTables(vcpus: number) {
  if (vcpus < 1 || vcpus > MPTABLE_MAX_VCPUS) return undefined;
  const set = new AcpiTableSet();
  set.contribute(x86AcpiContribution(vcpus));
  return set.build(ACPI_START);
}

describe('fuzz: kernel loader, bzImage', function () {
  this.timeout(fuzzTimeout(0.5));
  it(fuzzTitle('hostile bzImage headers: only X86BootError, nothing outside guest RAM, a plan inside RAM'), () => {
    const outcomes = new Outcomes();
    fc.assert(
      fc.property(hostileBzImage, (c) => {
        loadAndCheck(
          {
            kernel: c.image,
            cmdline: c.cmdline,
            protocol: 'auto',
            vcpus: c.vcpus,
            acpi: c.acpi ? acpiTables(c.vcpus) : undefined,
            initramfs: c.initramfs === undefined ? undefined : new Uint8Array(c.initramfs).fill(0x5a),
          },
          outcomes,
        );
      }),
      fuzzParams(),
    );
    reportOutcomes('bzImage', outcomes, ['loaded', 'TruncatedKernel', 'UnsupportedKernel'], 4);
  });
});
