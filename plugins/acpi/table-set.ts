import 'reflect-metadata';
import { injectable } from 'tsyringe';
import type { Disposable } from '../../core/bus/bus.js';
import type {
  AcpiContribution,
  AcpiFadtFields,
  AcpiMadtHeader,
  AcpiTableBody,
  AcpiTables,
  BuiltAcpiTables,
} from '../../core/acpi/tables.js';
import { concat } from './aml/encoding.js';
import { VmmError } from '../../core/errors.js';
import { AcpiError } from './errors.js';
import { fadt } from './fadt.js';
import { madt } from './madt.js';
import { RSDP_SIZE, rsdp, sdt, xsdt } from './sdt.js';

/** DSDT revision 2: AML integers are 64 bits. */
const DSDT_REVISION = 2;

const align8 = (n: number): number => (n + 7) & ~7;

/**
 * Merges field objects from several contributions: a field set twice must be set to the same
 * value (compared as JSON), else the tables would depend on the order of the plugins.
 */
function merge<T extends object>(what: string, parts: readonly { source: string; fields: T }[]): T {
  const out: Record<string, unknown> = {};
  const by: Record<string, string> = {};
  for (const { source, fields } of parts) {
    for (const [k, v] of Object.entries(fields)) {
      if (v === undefined) continue;
      if (k in out && JSON.stringify(out[k]) !== JSON.stringify(v))
        throw new AcpiError(
          'Contribution',
          `${what} field ${k}: '${by[k]}' sets ${JSON.stringify(out[k])}, '${source}' sets ${JSON.stringify(v)}`,
          { field: k, sources: [by[k], source] },
        );
      out[k] = v;
      by[k] = source;
    }
  }
  return out as T;
}

/**
 * The AcpiTables service: keeps the contributions in the order they were added and lays out
 * RSDP, XSDT, FADT, DSDT, MADT (when a contribution has MADT content) and the extra tables.
 */
@injectable()
export class AcpiTableSet implements AcpiTables {
  private readonly contributions: AcpiContribution[] = [];

  contribute(c: AcpiContribution): Disposable {
    this.contributions.push(c);
    return {
      dispose: () => {
        const i = this.contributions.indexOf(c);
        if (i >= 0) this.contributions.splice(i, 1);
      },
    };
  }

  /** Calls one member of every contribution, naming the contribution when it throws. */
  private collect<T>(pick: (c: AcpiContribution) => T | undefined): { source: string; value: T }[] {
    const out: { source: string; value: T }[] = [];
    for (const c of this.contributions) {
      let v: T | undefined;
      try {
        v = pick(c);
      } catch (err) {
        if (err instanceof VmmError) throw err; // already a clear one-line error
        throw new AcpiError(
          'Contribution',
          `the ACPI contribution of '${c.source}' failed: ${(err as Error)?.message ?? String(err)}`,
          { source: c.source },
          { cause: err },
        );
      }
      if (v !== undefined) out.push({ source: c.source, value: v });
    }
    return out;
  }

  build(base: bigint): BuiltAcpiTables {
    if (base < 0n || base % 16n !== 0n)
      throw new AcpiError('Layout', `the RSDP must be 16-byte aligned, not at 0x${base.toString(16)}`, {
        base: base.toString(),
      });
    const dsdtBody = concat(this.collect((c) => c.dsdt?.()).map((d) => d.value));
    const madtParts = this.collect((c) => c.madt?.());
    const madtHeader = merge<AcpiMadtHeader>(
      'MADT',
      madtParts.filter((p) => p.value.header).map((p) => ({ source: p.source, fields: p.value.header! })),
    );
    const madtEntries = madtParts.flatMap((p) => p.value.entries ?? []);
    const fadtFields = merge<AcpiFadtFields>(
      'FADT',
      this.collect((c) => c.fadt?.()).map((p) => ({ source: p.source, fields: p.value })),
    );
    const extra: AcpiTableBody[] = this.collect((c) => c.tables?.()).flatMap((p) => [...p.value]);

    const dsdt = sdt('DSDT', DSDT_REVISION, dsdtBody);
    const hasMadt = madtParts.length > 0;
    const others = [
      ...(hasMadt ? [madt(madtHeader, madtEntries)] : []),
      ...extra.map((t) => {
        if (!/^[A-Z0-9_]{4}$/.test(t.signature))
          throw new AcpiError('InvalidValue', `'${t.signature}' is not an ACPI table signature`, {
            signature: t.signature,
          });
        return sdt(t.signature, t.revision, t.body);
      }),
    ];
    // Layout: RSDP, XSDT, FADT, DSDT, then the others, each 8-byte aligned.
    const xsdtSize = xsdt(new Array<bigint>(1 + others.length).fill(0n)).length;
    const xsdtOff = align8(RSDP_SIZE);
    const fadtOff = align8(xsdtOff + xsdtSize);
    const dsdtOff = align8(fadtOff + fadt({}, 0n).length);
    const offsets: number[] = [];
    let end = dsdtOff + dsdt.length;
    for (const t of others) {
      offsets.push(align8(end));
      end = align8(end) + t.length;
    }
    const addr = (o: number): bigint => base + BigInt(o);
    const image = new Uint8Array(end);
    image.set(rsdp(addr(xsdtOff)), 0);
    image.set(xsdt([addr(fadtOff), ...offsets.map(addr)]), xsdtOff);
    image.set(fadt(fadtFields, addr(dsdtOff)), fadtOff);
    image.set(dsdt, dsdtOff);
    others.forEach((t, i) => image.set(t, offsets[i]));
    return { rsdp: base, image };
  }
}
