/**
 * Test helpers for ACPI contributors (this plugin's tests, plugins/x86, plugins/virtio-mmio):
 * reading a built image back the way ACPICA does, and ACPICA's own disassembler (`iasl -d`,
 * Debian package acpica-tools).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BuiltAcpiTables } from '../../core/acpi/tables.js';
import { sdt } from './sdt.js';

const text = (b: Uint8Array): string => String.fromCharCode(...b);
const sum8 = (b: Uint8Array): number => b.reduce((s, x) => (s + x) & 0xff, 0);

/**
 * Follows RSDP -> XSDT -> tables (and FADT -> X_DSDT) in a built image, checking every signature
 * and checksum on the way; returns the tables by signature. Throws on the first inconsistency.
 */
export function readTables(t: BuiltAcpiTables): Map<string, Uint8Array> {
  const at = (addr: bigint, len: number): Uint8Array => {
    const o = Number(addr - t.rsdp);
    if (o < 0 || o + len > t.image.length) throw new Error(`0x${addr.toString(16)}+${len} is outside the image`);
    return t.image.subarray(o, o + len);
  };
  const table = (addr: bigint): Uint8Array => {
    const len = new DataView(at(addr, 36).slice().buffer).getUint32(4, true);
    const b = at(addr, len);
    if (sum8(b) !== 0) throw new Error(`${text(b.subarray(0, 4))} checksum does not hold`);
    return b;
  };
  const r = at(t.rsdp, 36);
  if (text(r.subarray(0, 8)) !== 'RSD PTR ') throw new Error('no RSDP signature');
  if (sum8(r.subarray(0, 20)) !== 0 || sum8(r) !== 0) throw new Error('RSDP checksum does not hold');
  const x = table(new DataView(r.slice().buffer).getBigUint64(24, true));
  if (text(x.subarray(0, 4)) !== 'XSDT') throw new Error('the RSDP does not point at an XSDT');
  const out = new Map<string, Uint8Array>();
  const xv = new DataView(x.slice().buffer);
  for (let o = 36; o < x.length; o += 8) {
    const tb = table(xv.getBigUint64(o, true));
    out.set(text(tb.subarray(0, 4)), tb);
  }
  const f = out.get('FACP');
  if (f) {
    const fv = new DataView(f.slice().buffer);
    const dsdt = fv.getBigUint64(140, true);
    if (dsdt < 1n << 32n && BigInt(fv.getUint32(40, true)) !== dsdt) throw new Error('DSDT and X_DSDT differ');
    out.set('DSDT', table(dsdt));
  }
  return out;
}

/** The MADT's interrupt controller structures (after its 44-byte header). */
export function madtEntries(madt: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let p = 44; p < madt.length; p += madt[p + 1]) out.push(madt.subarray(p, p + madt[p + 1]));
  return out;
}

/** Where `iasl` is, or '' when acpica-tools is not installed. */
export const IASL = spawnSync('sh', ['-c', 'command -v iasl'], { encoding: 'utf8' }).stdout.trim();

/** Disassembles one table with `iasl -d` and returns the ASL text. */
export function disassemble(table: Uint8Array): string {
  const dir = mkdtempSync(join(tmpdir(), 'tsvmm-iasl-'));
  try {
    writeFileSync(join(dir, 'table.dat'), table);
    const r = spawnSync(IASL, ['-d', join(dir, 'table.dat')], { encoding: 'utf8', timeout: 30_000 });
    if (r.status !== 0) throw new Error(`iasl -d failed (${r.status}): ${r.stdout}${r.stderr}`);
    return readFileSync(join(dir, 'table.dsl'), 'utf8');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** ASL without comments, whitespace collapsed to single spaces: for comparing against expected ASL. */
export function normalizeAsl(asl: string): string {
  return asl
    .replace(/\/\*[\s\S]*?\*\//g, ' ')
    .replace(/\/\/[^\n]*/g, ' ')
    .replace(/\s+/g, ' ')
    .replace(/\s*([(){},])\s*/g, '$1')
    .trim();
}

/** AML bytes as a DSDT (revision 2), disassembled by iasl and normalized: the body between the outer braces. */
export function disassembleAml(aml: Uint8Array): string {
  const asl = normalizeAsl(disassemble(sdt('DSDT', 2, aml)));
  const open = asl.indexOf('{');
  return asl.slice(open + 1, asl.lastIndexOf('}'));
}

/**
 * A data table (FACP, APIC, MCFG...) as iasl -d decodes it, without the "[offset]" columns and with
 * whitespace collapsed: "Subtable Type : 00 [Processor Local APIC] Length : 08 Processor ID : 00 ...".
 */
export function disassembleFields(table: Uint8Array): string {
  return disassemble(table)
    .replace(/\[[0-9A-F]{3}h \d{4}\s+\d+\]/g, ' ')
    .replace(/\s+/g, ' ');
}
