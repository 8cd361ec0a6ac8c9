import { decodeCompressed, type CompressedExtent } from './compression.js';
import { fail } from './errors.js';
import type { HostFile } from './host-file.js';

/** What one guest cluster maps to. */
export type Mapping =
  | { t: 'unallocated' }
  | { t: 'zero' }
  | { t: 'zero-alloc'; host: number; copied: boolean }
  | { t: 'data'; host: number; copied: boolean }
  | { t: 'compressed'; extent: CompressedExtent };

/** Bit 63 of an L1/L2 entry (in its high 32-bit word): QCOW_OFLAG_COPIED, the cluster's refcount is exactly 1. */
export const COPIED_HI = 0x80000000;
/** Bit 62 of an L2 entry (in its high 32-bit word): the cluster is stored compressed. */
export const COMPRESSED_HI = 0x40000000;
/** Bit 0 of an L2 entry (in its low 32-bit word): the cluster reads as zeroes (version 3 images). */
export const ZERO_LO = 1;

const L2_CACHE_BYTES = 32 * 1024 * 1024;

/**
 * The two-level guest-cluster → host-cluster map: the L1 table (kept in memory) and L2
 * tables (cached). Every entry read from the file is validated before use: reserved bits,
 * alignment, and offsets inside the file.
 *
 * Write-back: changed L2 entries, new L2 tables and changed L1 entries stay in memory (dirty
 * tables are never evicted) until the image's flush writes them in dependency order
 * (`writeFreshTables`, then after a sync `writeTables`; see Qcow2Image.persist).
 */
export class ClusterMap {
  readonly l2Bits: number;
  private readonly cs: number;
  private readonly l2Cache = new Map<number, Uint8Array>();
  /** Tables changed since the last write-back: table index → changed byte range [first, end). */
  private readonly dirty = new Map<number, [number, number]>();
  /** Tables created since the last write-back: written whole, before the L1 entries that point to them. */
  private readonly fresh = new Set<number>();
  /** L1 entries changed since the last write-back. */
  private readonly dirtyL1 = new Set<number>();

  constructor(
    private readonly file: HostFile,
    readonly clusterBits: number,
    readonly l1Offset: number,
    readonly l1: Uint8Array,
    private readonly onL2Table: (cluster: number) => void,
  ) {
    this.cs = 2 ** clusterBits;
    this.l2Bits = clusterBits - 3;
    for (let i = 0; i < l1.length / 8; i++) {
      const off = this.l2Offset(i);
      if (off !== 0) onL2Table(off / this.cs);
    }
  }

  static async load(
    file: HostFile,
    clusterBits: number,
    l1Offset: number,
    l1Size: number,
    onL2Table: (c: number) => void,
  ): Promise<ClusterMap> {
    const l1 = new Uint8Array(l1Size * 8);
    await file.read(l1, l1Offset);
    return new ClusterMap(file, clusterBits, l1Offset, l1, onL2Table);
  }

  get l1Entries(): number {
    return this.l1.length / 8;
  }

  /** The validated L2 table offset behind L1 entry `i` (0 = none). */
  l2Offset(i: number): number {
    const dv = new DataView(this.l1.buffer, this.l1.byteOffset + i * 8, 8);
    const hi = dv.getUint32(0);
    const lo = dv.getUint32(4);
    if ((hi & 0x7fffffff) === 0 && lo === 0) return 0;
    if (lo & 0x1ff || hi & 0x7f000000) fail('BadEntry', `L1 entry ${i} has reserved bits set`, { index: i });
    const off = (hi & 0x00ffffff) * 2 ** 32 + lo;
    if (off % this.cs !== 0)
      fail('BadEntry', `L1 entry ${i} points to an unaligned L2 table`, { index: i, offset: off });
    if (off < this.cs) fail('BadEntry', `L1 entry ${i} points into the header`, { index: i });
    if (off >= this.file.size)
      fail('OffsetPastEof', `L1 entry ${i} points past the end of the file`, { index: i, offset: off });
    return off;
  }

  l1Copied(i: number): boolean {
    return (new DataView(this.l1.buffer, this.l1.byteOffset + i * 8, 4).getUint32(0) & COPIED_HI) !== 0;
  }

  async l2Table(i: number): Promise<Uint8Array | undefined> {
    const hit = this.cachedTable(i);
    if (hit) return hit;
    const off = this.l2Offset(i);
    if (off === 0) return undefined;
    const t = new Uint8Array(this.cs);
    await this.file.read(t, off);
    this.cache(i, t);
    return t;
  }

  /** L2 table `i` when it is in the cache (marked most recently used), else undefined. */
  private cachedTable(i: number): Uint8Array | undefined {
    const hit = this.l2Cache.get(i);
    if (hit) {
      this.l2Cache.delete(i);
      this.l2Cache.set(i, hit);
    }
    return hit;
  }

  /** Caches table `i`; over the budget, the least recently used clean table goes (dirty ones stay). */
  private cache(i: number, t: Uint8Array): void {
    this.l2Cache.set(i, t);
    if (this.l2Cache.size * this.cs <= L2_CACHE_BYTES) return;
    for (const k of this.l2Cache.keys()) {
      if (this.dirty.has(k) || this.fresh.has(k)) continue;
      this.l2Cache.delete(k);
      return;
    }
  }

  /** Bytes of tables held in memory until the next write-back. */
  get dirtyBytes(): number {
    return (this.dirty.size + this.fresh.size) * this.cs;
  }

  /**
   * lookup() without waiting: the mapping when guest cluster `vc`'s L2 table is cached or absent, undefined when
   * the table would have to be read from the file.
   */
  lookupCached(vc: number): Mapping | undefined {
    const i = Math.floor(vc / 2 ** this.l2Bits);
    const t = this.cachedTable(i);
    if (!t) return this.l2Offset(i) === 0 ? { t: 'unallocated' } : undefined;
    return this.decode(t, vc % 2 ** this.l2Bits, vc);
  }

  async lookup(vc: number): Promise<Mapping> {
    const t = await this.l2Table(Math.floor(vc / 2 ** this.l2Bits));
    if (!t) return { t: 'unallocated' };
    return this.decode(t, vc % 2 ** this.l2Bits, vc);
  }

  /** Decodes and validates one L2 entry. */
  decode(t: Uint8Array, j: number, vc: number): Mapping {
    const dv = new DataView(t.buffer, t.byteOffset + j * 8, 8);
    const hi = dv.getUint32(0);
    const lo = dv.getUint32(4);
    if (hi & COMPRESSED_HI) {
      if (hi & COPIED_HI) fail('BadEntry', `compressed L2 entry for guest cluster ${vc} has the copied flag`, { vc });
      const extent = decodeCompressed(dv.getBigUint64(0) & ((1n << 62n) - 1n), this.clusterBits);
      if (extent.offset < this.cs) fail('BadEntry', `compressed cluster ${vc} points into the header`, { vc });
      if (extent.offset >= this.file.size)
        fail('OffsetPastEof', `compressed cluster ${vc} starts past the end of the file`, {
          vc,
          offset: extent.offset,
        });
      return { t: 'compressed', extent };
    }
    if (lo & 0x1fe || hi & 0x3f000000)
      fail('BadEntry', `L2 entry for guest cluster ${vc} has reserved bits set`, { vc });
    const host = (hi & 0x00ffffff) * 2 ** 32 + ((lo & 0xfffffe00) >>> 0);
    const copied = (hi & COPIED_HI) !== 0;
    if (host % this.cs !== 0) fail('BadEntry', `L2 entry for guest cluster ${vc} is not cluster aligned`, { vc, host });
    if (host !== 0) {
      if (host < this.cs) fail('BadEntry', `guest cluster ${vc} maps into the header`, { vc });
      if (host >= this.file.size)
        fail('OffsetPastEof', `guest cluster ${vc} maps past the end of the file`, { vc, host });
    }
    if (lo & ZERO_LO) return host === 0 ? { t: 'zero' } : { t: 'zero-alloc', host, copied };
    if (host === 0) {
      if (copied) fail('BadEntry', `unallocated L2 entry for guest cluster ${vc} has the copied flag`, { vc });
      return { t: 'unallocated' };
    }
    return { t: 'data', host, copied };
  }

  /** Sets L2 entry `vc` in memory (written at the next write-back); the table must exist (see `ensureL2`). */
  async setEntry(vc: number, entry: bigint): Promise<void> {
    const i = Math.floor(vc / 2 ** this.l2Bits);
    const j = vc % 2 ** this.l2Bits;
    const t = await this.l2Table(i);
    if (!t) fail('BadTable', `no L2 table for guest cluster ${vc}`);
    new DataView(t.buffer, t.byteOffset + j * 8, 8).setBigUint64(0, entry);
    if (this.fresh.has(i)) return;
    const r = this.dirty.get(i);
    if (r) {
      r[0] = Math.min(r[0], j * 8);
      r[1] = Math.max(r[1], j * 8 + 8);
    } else this.dirty.set(i, [j * 8, j * 8 + 8]);
  }

  /** Points L1 entry `i` at a new L2 table at `host` (a cluster with its refcount taken), in memory. */
  installL2(i: number, host: number, table: Uint8Array): void {
    new DataView(this.l1.buffer, this.l1.byteOffset + i * 8, 8).setBigUint64(0, BigInt(host) | (1n << 63n));
    this.dirtyL1.add(i);
    this.fresh.add(i);
    this.dirty.delete(i);
    this.cache(i, table);
    this.onL2Table(host / this.cs);
  }

  /**
   * Write-back, first step: the L2 tables created since the last write-back, whole. Nothing on disk points to
   * them yet (their L1 entries go in `writeTables`, after a sync). False when there was none.
   */
  async writeFreshTables(): Promise<boolean> {
    if (this.fresh.size === 0) return false;
    const done = [...this.fresh];
    await Promise.all(done.map((i) => this.file.write(this.l2Cache.get(i)!, this.l2Offset(i))));
    for (const i of done) this.fresh.delete(i);
    return true;
  }

  /**
   * Write-back, last step: changed L2 entries and L1 entries. The caller has synced what they point to (data,
   * refcounts, fresh tables). False when nothing was dirty.
   */
  async writeTables(): Promise<boolean> {
    if (this.dirty.size === 0 && this.dirtyL1.size === 0) return false;
    const writes: Promise<void>[] = [];
    for (const [i, [s, e]] of this.dirty) {
      writes.push(this.file.write(this.l2Cache.get(i)!.subarray(s, e), this.l2Offset(i) + s));
    }
    for (const i of this.dirtyL1)
      writes.push(this.file.write(this.l1.subarray(i * 8, i * 8 + 8), this.l1Offset + i * 8));
    await Promise.all(writes);
    this.dirty.clear();
    this.dirtyL1.clear();
    return true;
  }
}
