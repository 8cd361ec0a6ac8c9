import { fail } from './errors.js';
import { HDR_REFTABLE, MAX_OFFSET, MAX_REFTABLE_BYTES } from './header.js';
import type { HostFile } from './host-file.js';
import { getRefcount, refcountMax, setRefcount } from './refcount-entry.js';

/** Keeps track of which host clusters hold metadata, for the overlap check on data writes. */
export interface MetadataMap {
  add(cluster: number): void;
  delete(cluster: number): void;
}

const BLOCK_CACHE_BYTES = 16 * 1024 * 1024;

/**
 * The refcount table and its blocks, plus the cluster allocator built on them.
 *
 * Write-back: refcount changes, new blocks and new table entries stay in memory (dirty blocks
 * are never evicted) until the image's flush writes them: `writeBlocks` (blocks, whole or the
 * changed range) then, after a sync, `writeEntries` (table entries pointing at new blocks).
 * The image writes L2 entries only after both are synced, so a crash can only leak the
 * clusters handed out by `allocCluster` (refcount 1 in memory). Writing blocks early is always
 * safe (decrements are applied only once nothing on disk references the cluster). A new
 * refcount table is complete and synced, with every dirty block, before the header switches to it.
 */
export class Refcounts {
  readonly order: number;
  readonly max: number;
  private readonly cs: number;
  /** log2 of entries per refcount block. */
  private readonly eb: number;
  private table: Uint8Array;
  private tableOffset: number;
  private tableClusters: number;
  private readonly blocks = new Map<number, Uint8Array>();
  /** Blocks changed since the last write-back: block index → changed byte range [first, end). */
  private readonly dirty = new Map<number, [number, number]>();
  /** Blocks created since the last write-back (written whole before their table entries). */
  private readonly fresh = new Set<number>();
  /** Table entries changed since the last write-back (they point at fresh blocks). */
  private readonly dirtyEntries = new Set<number>();
  private freeHint = 0;
  private reserved: number[] = [];
  /** Clusters that must not be picked even though their refcount is 0 (repair). */
  avoid: ((cluster: number) => boolean) | undefined;

  constructor(
    private readonly file: HostFile,
    clusterBits: number,
    order: number,
    tableOffset: number,
    tableClusters: number,
    table: Uint8Array,
    private readonly meta: MetadataMap,
  ) {
    this.cs = 2 ** clusterBits;
    this.order = order;
    this.max = refcountMax(order);
    this.eb = clusterBits + 3 - order;
    this.table = table;
    this.tableOffset = tableOffset;
    this.tableClusters = tableClusters;
    meta.add(0);
    for (let c = 0; c < tableClusters; c++) meta.add(tableOffset / this.cs + c);
    for (let i = 0; i < this.entries; i++) {
      const off = this.blockOffset(i);
      if (off !== 0) meta.add(off / this.cs);
    }
  }

  static async load(
    file: HostFile,
    clusterBits: number,
    order: number,
    tableOffset: number,
    tableClusters: number,
    meta: MetadataMap,
  ): Promise<Refcounts> {
    const cs = 2 ** clusterBits;
    const table = new Uint8Array(tableClusters * cs);
    await file.read(table, tableOffset);
    return new Refcounts(file, clusterBits, order, tableOffset, tableClusters, table, meta);
  }

  get entries(): number {
    return (this.tableClusters * this.cs) / 8;
  }

  get tableLocation(): { offset: number; clusters: number } {
    return { offset: this.tableOffset, clusters: this.tableClusters };
  }

  /** Clusters covered by one refcount block. */
  get blockSpan(): number {
    return 2 ** this.eb;
  }

  /** Validated offset of refcount block `i` (0 when absent). */
  blockOffset(i: number): number {
    if (i >= this.entries) return 0;
    const dv = new DataView(this.table.buffer, this.table.byteOffset + i * 8, 8);
    const hi = dv.getUint32(0);
    const lo = dv.getUint32(4);
    if (hi === 0 && lo === 0) return 0;
    if (lo & 0x1ff) fail('BadEntry', `refcount table entry ${i} has reserved bits set`, { index: i });
    const off = hi * 2 ** 32 + lo;
    if (off >= MAX_OFFSET || off % this.cs !== 0)
      fail('BadEntry', `refcount table entry ${i} is not a cluster-aligned offset`, { index: i, offset: off });
    if (off < this.cs) fail('BadEntry', `refcount block ${i} overlaps the header`, { index: i });
    if (off >= this.file.size)
      fail('OffsetPastEof', `refcount block ${i} at ${off} is past the end of the file`, { index: i, offset: off });
    return off;
  }

  /** Refcount block `i` as stored (undefined when absent); throws QcowError on a bad table entry. */
  blockAt(i: number): Promise<Uint8Array | undefined> {
    return this.block(i);
  }

  private async block(i: number): Promise<Uint8Array | undefined> {
    const cached = this.blocks.get(i);
    if (cached) {
      this.blocks.delete(i);
      this.blocks.set(i, cached);
      return cached;
    }
    const off = this.blockOffset(i);
    if (off === 0) return undefined;
    const b = new Uint8Array(this.cs);
    await this.file.read(b, off);
    this.blocks.set(i, b);
    if (this.blocks.size * this.cs > BLOCK_CACHE_BYTES) {
      for (const k of this.blocks.keys()) {
        if (this.dirty.has(k) || this.fresh.has(k)) continue;
        this.blocks.delete(k); // the least recently used clean block
        break;
      }
    }
    return b;
  }

  /** Bytes of blocks held in memory until the next write-back. */
  get dirtyBytes(): number {
    return (this.dirty.size + this.fresh.size) * this.cs;
  }

  /**
   * Write-back, first step: new blocks whole, changed ranges of the others. False when nothing was dirty.
   * Safe at any time (see the class comment); the caller syncs before `writeEntries`.
   */
  async writeBlocks(): Promise<boolean> {
    if (this.fresh.size === 0 && this.dirty.size === 0) return false;
    const fresh = [...this.fresh];
    const dirty = [...this.dirty];
    const writes: Promise<void>[] = [];
    for (const i of fresh) writes.push(this.file.write(this.blocks.get(i)!, this.blockOffset(i)));
    for (const [i, [s, e]] of dirty)
      writes.push(this.file.write(this.blocks.get(i)!.subarray(s, e), this.blockOffset(i) + s));
    await Promise.all(writes);
    for (const i of fresh) this.fresh.delete(i);
    for (const [i] of dirty) this.dirty.delete(i);
    return true;
  }

  /** Write-back, second step: table entries of new blocks (the blocks are synced). False when there was none. */
  async writeEntries(): Promise<boolean> {
    if (this.dirtyEntries.size === 0) return false;
    const done = [...this.dirtyEntries];
    await Promise.all(
      done.map((i) => this.file.write(this.table.subarray(i * 8, i * 8 + 8), this.tableOffset + i * 8)),
    );
    for (const i of done) this.dirtyEntries.delete(i);
    return true;
  }

  /** Writes every refcount change back and syncs it (repair; the image's flush orders it with the L2 tables). */
  async persist(): Promise<void> {
    await this.writeBlocks();
    await this.file.sync();
    if (await this.writeEntries()) await this.file.sync();
  }

  async get(cluster: number): Promise<number> {
    const b = await this.block(Math.floor(cluster / this.blockSpan));
    return b ? getRefcount(b, cluster % this.blockSpan, this.order) : 0;
  }

  /** Sets a refcount in memory (written at the next write-back), creating the refcount block when needed. */
  async set(cluster: number, value: number, exclude?: Set<number>): Promise<void> {
    if (value < 0)
      fail('BadEntry', `refcount of cluster ${cluster} would drop below zero (image corrupt)`, { cluster });
    if (value > this.max)
      fail('RefcountOverflow', `refcount of cluster ${cluster} would exceed ${this.max}`, { cluster });
    const i = Math.floor(cluster / this.blockSpan);
    let b = await this.block(i);
    if (!b) {
      if (value === 0) return;
      b = await this.createBlock(i, exclude ?? new Set([cluster]));
    }
    const [s, e] = setRefcount(b, cluster % this.blockSpan, this.order, value);
    if (this.fresh.has(i)) return;
    const r = this.dirty.get(i);
    if (r) {
      r[0] = Math.min(r[0], s);
      r[1] = Math.max(r[1], e);
    } else this.dirty.set(i, [s, e]);
  }

  async update(cluster: number, delta: number, exclude?: Set<number>): Promise<number> {
    const v = (await this.get(cluster)) + delta;
    await this.set(cluster, v, exclude);
    if (v === 0 && cluster < this.freeHint) this.freeHint = cluster;
    return v;
  }

  /** A cluster with refcount 1 (in memory until the next write-back), for the caller to reference. */
  async allocCluster(): Promise<number> {
    // Batches stay well below one refcount block's span, so a new block always finds a home in its own range.
    // Up to 8 MiB per batch: a crash after a write-back leaks at most the unused rest.
    if (this.reserved.length === 0) await this.reserve(Math.max(1, Math.min((8 << 20) / this.cs, this.blockSpan / 4)));
    return this.reserved.shift()!;
  }

  private async isFree(c: number): Promise<boolean> {
    if (this.avoid?.(c) || this.reserved.includes(c)) return false;
    return (await this.get(c)) === 0;
  }

  private async reserve(n: number): Promise<void> {
    const picked = new Set<number>();
    let c = this.freeHint;
    while (picked.size < n) {
      if (await this.isFree(c)) picked.add(c);
      c++;
    }
    this.freeHint = c;
    for (const p of picked) await this.update(p, 1, picked);
    await this.file.ensureSize(c * this.cs);
    this.reserved.push(...picked);
  }

  /** Gives back reserved-but-unused clusters (in memory: write them back, sync, then `trimEnd`). */
  async releaseReserved(): Promise<void> {
    const r = this.reserved;
    this.reserved = [];
    for (const c of r) await this.update(c, -1);
  }

  /** Trims free clusters off the end of the file (after their refcounts were written back). */
  async trimEnd(): Promise<void> {
    let end = Math.ceil(this.file.size / this.cs);
    while (end > 1 && (await this.get(end - 1)) === 0 && !this.avoid?.(end - 1)) end--;
    if (end * this.cs < this.file.size) await this.file.truncate(end * this.cs);
  }

  private pickBlockHome(i: number, exclude: Set<number>): number {
    const base = i * this.blockSpan;
    for (let c = Math.max(base, 1); c < base + this.blockSpan; c++) {
      if (!exclude.has(c) && !this.reserved.includes(c) && !this.avoid?.(c)) return c;
    }
    return fail('BadTable', `no room for refcount block ${i}`);
  }

  /** Creates refcount block `i` inside the range it describes, so it counts itself. */
  private async createBlock(i: number, exclude: Set<number>): Promise<Uint8Array> {
    if (i >= this.entries) await this.grow(i + 1, exclude);
    const existing = await this.block(i);
    if (existing) return existing;
    const home = this.pickBlockHome(i, exclude);
    const b = new Uint8Array(this.cs);
    setRefcount(b, home - i * this.blockSpan, this.order, 1);
    await this.file.ensureSize((home + 1) * this.cs);
    new DataView(this.table.buffer, this.table.byteOffset + i * 8, 8).setBigUint64(0, BigInt(home * this.cs));
    this.fresh.add(i);
    this.dirtyEntries.add(i);
    this.blocks.set(i, b);
    this.meta.add(home);
    return b;
  }

  /** Moves to a bigger refcount table at the end of the file (self-describing), then frees the old one. */
  private async grow(need: number, exclude: Set<number>): Promise<void> {
    const perCluster = this.cs / 8;
    let start = Math.ceil(this.file.size / this.cs);
    for (const c of exclude) start = Math.max(start, c + 1);
    for (const c of this.reserved) start = Math.max(start, c + 1);
    let entries = Math.max(need, this.entries * 2);
    for (;;) {
      const clusters = Math.ceil(entries / perCluster);
      // New blocks follow the table; they and the table must be covered by the new table.
      const counted: number[] = [];
      for (let c = start; c < start + clusters; c++) counted.push(c);
      const newBlocks = new Map<number, { at: number; buf: Uint8Array }>();
      let next = start + clusters;
      for (let k = 0; k < counted.length; k++) {
        const r = Math.floor(counted[k]! / this.blockSpan);
        if (this.blockOffset(r) !== 0 || newBlocks.has(r)) continue;
        newBlocks.set(r, { at: next, buf: new Uint8Array(this.cs) });
        counted.push(next++);
      }
      const maxIndex = Math.max(need - 1, ...newBlocks.keys());
      if (maxIndex >= clusters * perCluster) {
        entries = (maxIndex + 1) * 2;
        continue;
      }
      if (clusters * this.cs > MAX_REFTABLE_BYTES) fail('TooLarge', 'refcount table would exceed its size limit');
      const table = new Uint8Array(clusters * this.cs);
      table.set(this.table);
      const tdv = new DataView(table.buffer);
      for (const [r, nb] of newBlocks) tdv.setBigUint64(r * 8, BigInt(nb.at * this.cs));
      const inOld: number[] = [];
      for (const c of counted) {
        const nb = newBlocks.get(Math.floor(c / this.blockSpan));
        if (nb) setRefcount(nb.buf, c % this.blockSpan, this.order, 1);
        else inOld.push(c);
      }
      for (const nb of newBlocks.values()) await this.file.write(nb.buf, nb.at * this.cs);
      await this.file.write(table, start * this.cs);
      for (const c of inOld) await this.set(c, (await this.get(c)) + 1);
      // Everything the new table counts on (dirty and fresh blocks included) is on disk before the header says so.
      await this.writeBlocks();
      await this.file.sync();
      const hdr = new Uint8Array(12);
      const hdv = new DataView(hdr.buffer);
      hdv.setBigUint64(0, BigInt(start * this.cs));
      hdv.setUint32(8, clusters);
      await this.file.write(hdr, HDR_REFTABLE);
      await this.file.sync();
      const oldStart = this.tableOffset / this.cs;
      const oldClusters = this.tableClusters;
      this.table = table;
      this.tableOffset = start * this.cs;
      this.tableClusters = clusters;
      this.dirtyEntries.clear(); // the new table was written whole
      for (const [r, nb] of newBlocks) {
        this.blocks.set(r, nb.buf);
        this.meta.add(nb.at);
      }
      for (let c = start; c < start + clusters; c++) this.meta.add(c);
      for (let c = oldStart; c < oldStart + oldClusters; c++) {
        this.meta.delete(c);
        await this.update(c, -1);
      }
      return;
    }
  }
}
