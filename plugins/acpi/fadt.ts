import type { AcpiFadtFields } from '../../core/acpi/tables.js';
import { ascii, HEADER_SIZE, sdt } from './sdt.js';

/** Bytes in a revision 6 FADT. */
export const FADT_SIZE = 276;

/** FADT fixed feature flags (ACPI 6.4, table 5.10). */
export const FADT_FLAGS = {
  WBINVD: 1 << 0,
  PWR_BUTTON: 1 << 4,
  SLP_BUTTON: 1 << 5,
  HW_REDUCED_ACPI: 1 << 20,
} as const;

/**
 * The FADT (signature FACP, revision 6) from the platform's fields. What no contribution sets:
 * P_LVL2_LAT 101 and P_LVL3_LAT 1001 (no C2, no C3), and HW_REDUCED_ACPI when there is no PM1a
 * control block (a full FADT must name one). The X_ PM blocks stay 0: ACPICA converts the 32-bit
 * ones. X_DSDT and DSDT both point at the DSDT.
 */
export function fadt(f: AcpiFadtFields, dsdt: bigint): Uint8Array {
  const b = new Uint8Array(FADT_SIZE - HEADER_SIZE);
  const dv = new DataView(b.buffer);
  const at = (off: number): number => off - HEADER_SIZE;
  dv.setUint32(at(40), dsdt < 1n << 32n ? Number(dsdt) : 0, true); // DSDT (32-bit; X_DSDT has all 64)
  dv.setUint16(at(46), f.sciInterrupt ?? 0, true);
  dv.setUint32(at(48), f.smiCommand ?? 0, true);
  dv.setUint32(at(56), f.pm1aEvent?.port ?? 0, true); // PM1a_EVT_BLK
  dv.setUint32(at(64), f.pm1aControl?.port ?? 0, true); // PM1a_CNT_BLK
  b[at(88)] = f.pm1aEvent?.length ?? 0;
  b[at(89)] = f.pm1aControl?.length ?? 0;
  dv.setUint16(at(96), 101, true); // P_LVL2_LAT > 100: no C2
  dv.setUint16(at(98), 1001, true); // P_LVL3_LAT > 1000: no C3
  b[at(108)] = f.century ?? 0;
  dv.setUint16(at(109), f.iapcBootArch ?? 0, true);
  const flags = (f.flags ?? 0) | (f.pm1aControl ? 0 : FADT_FLAGS.HW_REDUCED_ACPI);
  dv.setUint32(at(112), flags, true);
  dv.setUint16(at(129), f.armBootArch ?? 0, true);
  b[at(131)] = 0; // FADT minor version (ACPI 6.0)
  dv.setBigUint64(at(140), dsdt, true); // X_DSDT
  ascii(b, at(268), 'TSVMMVMM', 8); // hypervisor vendor identity
  return sdt('FACP', 6, b);
}
