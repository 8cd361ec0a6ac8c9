import type { MsiGroup, MsiMessage } from '../../core/interrupts/interrupts.js';
import type { PciCapability, PciConfigSpace } from './config/space.js';
import { PciCapId } from './config/registers.js';
import { PciError } from './errors.js';
import { sameMessage } from './msi.js';
import type { RefusalLog } from './refusals.js';

/** MSI-X Message Control bits (PCI 3.0, 6.8.2.3). */
export const MsixControl = {
  /** Bits 10:0: table size - 1 (read only). */
  TABLE_SIZE_MASK: 0x7ff,
  FUNCTION_MASK: 1 << 14,
  ENABLE: 1 << 15,
} as const;

/** Bytes per MSI-X table entry: address low, address high, data, vector control. */
export const MSIX_ENTRY_SIZE = 16;
/** Vector Control bit 0: the vector is masked. */
const VECTOR_MASKED = 1;
/** The MSI-X capability's length in bytes. */
const MSIX_CAP_LENGTH = 12;
/** Most vectors a function may have. */
export const MAX_MSIX_VECTORS = 2048;

/** Where an MSI-X function keeps its table and pending-bit array, and how many vectors it has. */
export interface MsixOptions {
  /** 1..2048. */
  readonly vectors: number;
  /** BAR (index) holding the table, and its offset in the BAR (8-byte aligned). */
  readonly tableBar: number;
  readonly tableOffset: number;
  /** BAR holding the pending-bit array, and its offset (8-byte aligned). */
  readonly pbaBar: number;
  readonly pbaOffset: number;
  /** Place the capability at this offset, outside the space's own list (PciConfigSpace.addCapability `at`). */
  readonly capOffset?: number;
}

/** A part of a BAR the function serves with its own code (the MSI-X table, a virtio structure). */
export interface BarRegionHandler {
  read(offset: bigint, data: Uint8Array): void;
  write(offset: bigint, data: Uint8Array): void;
}

/** A BAR region: BAR index, offset and size in bytes, and who serves it. */
export interface BarRegion {
  readonly bar: number;
  readonly offset: bigint;
  readonly size: bigint;
  readonly handler: BarRegionHandler;
}

/**
 * MSI-X (capability id 0x11) with its table and pending-bit array (PBA), delivering through an MsiGroup
 * of the Interrupts service. Vector i delivers while MSI-X is enabled, the function mask is clear and
 * its entry's mask bit is clear; the group then holds the entry's message and is unmasked, otherwise it
 * is masked and triggers wait as pending bits (read back through the PBA, delivered at unmask). The
 * table and PBA live in BARs: serve `tableRegion` and `pbaRegion` there (PciFunction.addBarRegion).
 * Table accesses of any width are taken byte by byte; reserved bits read 0 and ignore writes; the PBA is
 * read only. A message the hypervisor refuses masks that vector and is logged (rate limited).
 */
export class MsixTable {
  readonly cap: PciCapability;
  readonly vectors: number;
  readonly tableRegion: BarRegion;
  readonly pbaRegion: BarRegion;
  private readonly table: Uint8Array;
  private group: MsiGroup | undefined;

  constructor(
    space: PciConfigSpace,
    readonly opts: MsixOptions,
    private readonly refusals?: RefusalLog,
  ) {
    const n = opts.vectors;
    if (!Number.isInteger(n) || n < 1 || n > MAX_MSIX_VECTORS)
      throw new PciError('InvalidValue', `MSI-X vectors ${n} is not 1..${MAX_MSIX_VECTORS}`);
    this.vectors = n;
    const tableSize = BigInt(n * MSIX_ENTRY_SIZE);
    const pbaSize = BigInt(Math.ceil(n / 64) * 8);
    this.tableRegion = this.region(opts.tableBar, opts.tableOffset, tableSize, 'table', {
      read: (o, d) => this.readTable(o, d),
      write: (o, d) => this.writeTable(o, d),
    });
    this.pbaRegion = this.region(opts.pbaBar, opts.pbaOffset, pbaSize, 'PBA', {
      read: (o, d) => this.readPba(o, d),
      write: () => undefined, // read only
    });
    if (opts.tableBar === opts.pbaBar) {
      const t = this.tableRegion;
      const p = this.pbaRegion;
      if (t.offset < p.offset + p.size && p.offset < t.offset + t.size)
        throw new PciError('InvalidValue', 'MSI-X table and PBA overlap');
    }
    const bar = space.bars.find((b) => b.index === opts.tableBar);
    const pbaBar = space.bars.find((b) => b.index === opts.pbaBar);
    for (const [what, spec, r] of [
      ['table', bar, this.tableRegion],
      ['PBA', pbaBar, this.pbaRegion],
    ] as const) {
      if (!spec || spec.kind === 'io' || r.offset + r.size > spec.size)
        throw new PciError('InvalidValue', `MSI-X ${what} does not fit in memory BAR ${r.bar}`, { bar: r.bar });
    }
    this.table = new Uint8Array(n * MSIX_ENTRY_SIZE);
    for (let i = 0; i < n; i++) this.table[i * MSIX_ENTRY_SIZE + 12] = VECTOR_MASKED;
    this.cap = space.addCapability(PciCapId.MSIX, MSIX_CAP_LENGTH, opts.capOffset);
    this.cap.define(2, 2, n - 1, { writable: MsixControl.ENABLE | MsixControl.FUNCTION_MASK });
    this.cap.define(4, 4, (opts.tableOffset | opts.tableBar) >>> 0);
    this.cap.define(8, 4, (opts.pbaOffset | opts.pbaBar) >>> 0);
    this.cap.watch({ onWrite: () => this.syncAll() });
  }

  private region(bar: number, offset: number, size: bigint, what: string, handler: BarRegionHandler): BarRegion {
    if (!Number.isInteger(bar) || bar < 0 || bar > 5 || !Number.isInteger(offset) || offset < 0 || offset % 8 !== 0)
      throw new PciError(
        'InvalidValue',
        `MSI-X ${what} at BAR ${bar} offset ${offset} is not 8-byte aligned in BAR 0..5`,
      );
    return { bar, offset: BigInt(offset), size, handler };
  }

  /** Message Control's MSI-X Enable bit. */
  get enabled(): boolean {
    return (this.cap.get(2, 2) & MsixControl.ENABLE) !== 0;
  }

  /** Message Control's Function Mask bit. */
  get functionMasked(): boolean {
    return (this.cap.get(2, 2) & MsixControl.FUNCTION_MASK) !== 0;
  }

  /** Entry `i`'s own mask bit (Vector Control bit 0). */
  entryMasked(i: number): boolean {
    return (this.table[i * MSIX_ENTRY_SIZE + 12] & VECTOR_MASKED) !== 0;
  }

  /** The message in entry `i` as the guest wrote it. */
  message(i: number): MsiMessage {
    const dv = new DataView(this.table.buffer, i * MSIX_ENTRY_SIZE, MSIX_ENTRY_SIZE);
    return {
      address: (BigInt(dv.getUint32(4, true)) << 32n) | BigInt(dv.getUint32(0, true)),
      data: dv.getUint32(8, true),
    };
  }

  /** Whether vector `i` would deliver now (enabled, function and entry unmasked). */
  deliverable(i: number): boolean {
    return this.enabled && !this.functionMasked && !this.entryMasked(i);
  }

  /** Delivers through `group` (at least `vectors` vectors) from now on; the table applies at once. */
  connect(group: MsiGroup): void {
    if (group.size < this.vectors)
      throw new PciError('InvalidValue', `MSI group of ${group.size} vectors is smaller than ${this.vectors}`);
    this.group = group;
    this.syncAll();
  }

  /** Raises vector `i` (its pending bit while masked); false for a vector out of range or without a group. */
  trigger(i: number): boolean {
    if (!this.group || !Number.isInteger(i) || i < 0 || i >= this.vectors) return false;
    this.group.trigger(i);
    return true;
  }

  /** A guest read inside the table. */
  readTable(offset: bigint, data: Uint8Array): void {
    for (let k = 0; k < data.length; k++) {
      const at = offset + BigInt(k);
      data[k] = at >= 0n && at < BigInt(this.table.length) ? this.table[Number(at)] : 0;
    }
  }

  /** A guest write inside the table: addresses, data and the mask bit; reserved bits stay 0. */
  writeTable(offset: bigint, data: Uint8Array): void {
    const touched = new Set<number>();
    for (let k = 0; k < data.length; k++) {
      const at = offset + BigInt(k);
      if (at < 0n || at >= BigInt(this.table.length)) continue;
      const i = Number(at);
      const field = i % MSIX_ENTRY_SIZE;
      const mask = field === 0 ? 0xfc : field === 12 ? VECTOR_MASKED : field > 12 ? 0 : 0xff;
      this.table[i] = (this.table[i] & ~mask) | (data[k] & mask);
      touched.add(Math.floor(i / MSIX_ENTRY_SIZE));
    }
    for (const i of touched) this.sync(i);
  }

  /** A guest read inside the PBA: bit i = vector i pending. */
  readPba(offset: bigint, data: Uint8Array): void {
    for (let k = 0; k < data.length; k++) {
      const byte = offset + BigInt(k);
      let v = 0;
      for (let b = 0; b < 8; b++) {
        const i = byte * 8n + BigInt(b);
        if (i >= 0n && i < BigInt(this.vectors) && this.group?.pending(Number(i))) v |= 1 << b;
      }
      data[k] = v;
    }
  }

  private syncAll(): void {
    for (let i = 0; i < this.vectors; i++) this.sync(i);
  }

  private sync(i: number): void {
    const g = this.group;
    if (!g) return;
    try {
      if (!this.deliverable(i)) {
        if (!g.vector(i).masked) g.mask(i);
        return;
      }
      const message = this.message(i);
      if (!sameMessage(g.vector(i).message, message)) g.update(i, message);
      if (g.vector(i).masked) g.unmask(i);
    } catch (err) {
      try {
        g.mask(i);
      } catch {
        // the group is gone (unplugged): nothing to mask
      }
      this.refusals?.refuse(`msix:${g.owner}`, `${g.owner}: MSI-X vector ${i} refused`, { err: String(err) });
    }
  }
}
