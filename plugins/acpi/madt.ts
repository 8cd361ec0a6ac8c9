import type { AcpiMadtHeader } from '../../core/acpi/tables.js';
import { AcpiError } from './errors.js';
import { sdt } from './sdt.js';

/**
 * The MADT (signature APIC, revision 4): the local interrupt controller address and flags, then
 * the interrupt controller structures the platform contributed, in order. Their types and
 * contents are the platform's (x86: local APIC, I/O APIC, overrides, NMI; arm64: GICC, GICD...).
 */
export function madt(header: AcpiMadtHeader, entries: readonly Uint8Array[]): Uint8Array {
  entries.forEach((e, i) => {
    if (e.length < 2 || e[1] !== e.length)
      throw new AcpiError(
        'InvalidValue',
        `MADT entry ${i} (type ${e[0]}) is ${e.length} bytes but says ${e[1]} in its length field`,
        { index: i, type: e[0] },
      );
  });
  const b = new Uint8Array(8 + entries.reduce((n, e) => n + e.length, 0));
  const dv = new DataView(b.buffer);
  dv.setUint32(0, header.localInterruptController ?? 0, true);
  dv.setUint32(4, header.flags ?? 0, true);
  let p = 8;
  for (const e of entries) {
    b.set(e, p);
    p += e.length;
  }
  return sdt('APIC', 4, b);
}
