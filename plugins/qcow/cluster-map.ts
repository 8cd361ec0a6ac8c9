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
 * tables (cached, written through entry by entry). Every entry read from the file is
 * validated before use: reserved bits, alignment, and offsets inside the file.
 */
export class ClusterMap {
  readonly l2Bits: number;
  private readonly cs: number;
  private readonly l2Cache = new Map<number, Uint8Array>();

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
    const hit = this.l2Cache.get(i);
    if (hit) {
      this.l2Cache.delete(i);
      this.l2Cache.set(i, hit);
      return hit;
    }
    const off = this.l2Offset(i);
    if (off === 0) return undefined;
    const t = new Uint8Array(this.cs);
    await this.file.read(t, off);
    this.cache(i, t);
    return t;
  }

  private cache(i: number, t: Uint8Array): void {
    this.l2Cache.set(i, t);
    if (this.l2Cache.size * this.cs > L2_CACHE_BYTES) this.l2Cache.delete(this.l2Cache.keys().next().value as number);
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

  /** Writes L2 entry `vc` through; the table must exist (see `ensureL2`). */
  async setEntry(vc: number, entry: bigint): Promise<void> {
    const i = Math.floor(vc / 2 ** this.l2Bits);
    const j = vc % 2 ** this.l2Bits;
    const t = await this.l2Table(i);
    if (!t) fail('BadTable', `no L2 table for guest cluster ${vc}`);
    new DataView(t.buffer, t.byteOffset + j * 8, 8).setBigUint64(0, entry);
    await this.file.write(t.subarray(j * 8, j * 8 + 8), this.l2Offset(i) + j * 8);
  }

  /** Points L1 entry `i` at a freshly written, synced L2 table at `host`. */
  async installL2(i: number, host: number, table: Uint8Array): Promise<void> {
    const e = new Uint8Array(8);
    new DataView(e.buffer).setBigUint64(0, BigInt(host) | (1n << 63n));
    this.l1.set(e, i * 8);
    await this.file.write(e, this.l1Offset + i * 8);
    this.cache(i, table);
    this.onL2Table(host / this.cs);
  }
}
