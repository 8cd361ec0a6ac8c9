/**
 * The table framing every ACPI table shares (ACPI 6.4, 5.2.5-5.2.8): the RSDP, the 36-byte
 * System Description Table header with its checksum, and the XSDT that lists the tables.
 */

/** Bytes in the standard table header. */
export const HEADER_SIZE = 36;
/** Bytes in an ACPI 2.0+ RSDP. */
export const RSDP_SIZE = 36;
/** OEM identity written into the RSDP and every header (6 characters). */
export const OEM_ID = 'TSVMM ';
/** OEM table identity written into every header (8 characters). */
export const OEM_TABLE_ID = 'TSVMMTBL';
/** The "ASL compiler" identity written into every header (4 characters). */
export const CREATOR_ID = 'TSVM';

const sum8 = (b: Uint8Array): number => b.reduce((s, x) => (s + x) & 0xff, 0);

/** The byte that makes `b` sum to 0 (mod 256). */
export const checksumOf = (b: Uint8Array): number => (0x100 - sum8(b)) & 0xff;

/** Writes `text` into `dst` at `at`, space-padded to `width` bytes. */
export function ascii(dst: Uint8Array, at: number, text: string, width: number): void {
  for (let i = 0; i < width; i++) dst[at + i] = i < text.length ? text.charCodeAt(i) : 0x20;
}

/** A table: the standard header (length and checksum filled in) followed by `body`. */
export function sdt(signature: string, revision: number, body: Uint8Array): Uint8Array {
  const t = new Uint8Array(HEADER_SIZE + body.length);
  const dv = new DataView(t.buffer);
  ascii(t, 0, signature, 4);
  dv.setUint32(4, t.length, true);
  t[8] = revision;
  ascii(t, 10, OEM_ID, 6);
  ascii(t, 16, OEM_TABLE_ID, 8);
  dv.setUint32(24, 1, true); // OEM revision
  ascii(t, 28, CREATOR_ID, 4);
  dv.setUint32(32, 1, true); // creator revision
  t.set(body, HEADER_SIZE);
  t[9] = checksumOf(t);
  return t;
}

/** The XSDT: one 64-bit address per table. */
export function xsdt(tables: readonly bigint[]): Uint8Array {
  const body = new Uint8Array(8 * tables.length);
  const dv = new DataView(body.buffer);
  tables.forEach((a, i) => dv.setBigUint64(8 * i, a, true));
  return sdt('XSDT', 1, body);
}

/** An ACPI 2.0+ RSDP pointing at the XSDT (no RSDT), both checksums filled in. */
export function rsdp(xsdtAddress: bigint): Uint8Array {
  const r = new Uint8Array(RSDP_SIZE);
  const dv = new DataView(r.buffer);
  ascii(r, 0, 'RSD PTR ', 8);
  ascii(r, 9, OEM_ID, 6);
  r[15] = 2; // revision: ACPI 2.0+
  dv.setUint32(16, 0, true); // no RSDT
  dv.setUint32(20, RSDP_SIZE, true);
  dv.setBigUint64(24, xsdtAddress, true);
  r[8] = checksumOf(r.subarray(0, 20));
  r[32] = checksumOf(r);
  return r;
}
