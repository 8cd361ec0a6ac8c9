import * as fs from 'node:fs';
import { GuestAddress, GuestRange } from '../address.js';
import { c, errno, ERRNO, NativeError } from '../native/libc.js';
import type { FieldType, GuestMemory, GuestMemoryRegion, Layout, LayoutValues, MemoryAccess } from './guest-memory.js';
import { GuestMemoryError } from './errors.js';

const WIDTH: Record<FieldType, number> = { u8: 1, u16: 2, u32: 4, u64: 8 };

const hex = (v: bigint): string => `0x${v.toString(16)}`;

function checkLength(length: number | bigint, what: string): bigint {
  if (typeof length === 'number' && (!Number.isSafeInteger(length) || length < 0)) {
    throw new GuestMemoryError('InvalidLength', `${what}: length ${length} is not a non-negative integer`, { length });
  }
  const l = BigInt(length);
  if (l < 0n) throw new GuestMemoryError('InvalidLength', `${what}: length ${l} is negative`, { length: l });
  return l;
}

/** One piece of an access: a region and the byte range inside its view. */
interface Piece {
  region: GuestMemoryRegion;
  index: number;
  offset: number;
  length: number;
}

/**
 * Guest memory made of non-overlapping regions, sorted by address. Accesses may
 * span regions that touch (end of one == start of the next) but never a hole.
 * Every check is done in bigint, so addresses near 2^64 neither wrap nor round.
 * `release` is called once by close() and frees the backing (munmap, close fds).
 */
export class RegionGuestMemory implements GuestMemory {
  readonly regions: readonly GuestMemoryRegion[];
  readonly size: bigint;
  private readonly views: DataView[];
  /** Each region's [start, end) as numbers for sliceAt (NaN for a region that ends above 2^53: never matched). */
  private readonly numStart: Float64Array;
  private readonly numEnd: Float64Array;
  private closed = false;

  constructor(
    regions: readonly GuestMemoryRegion[],
    private readonly release: () => void = () => {},
  ) {
    const sorted = [...regions].sort((a, b) => (a.range.start.value < b.range.start.value ? -1 : 1));
    for (let i = 0; i < sorted.length; i++) {
      const r = sorted[i];
      if (BigInt(r.bytes.length) !== r.range.length) {
        throw new GuestMemoryError('Backend', `region ${r.range} has a view of ${r.bytes.length} bytes`, {
          range: r.range.toString(),
        });
      }
      if (i > 0 && sorted[i - 1].range.overlaps(r.range)) {
        throw new GuestMemoryError('InvalidRange', `regions ${sorted[i - 1].range} and ${r.range} overlap`);
      }
    }
    this.regions = Object.freeze(sorted);
    this.size = sorted.reduce((s, r) => s + r.range.length, 0n);
    this.views = sorted.map((r) => new DataView(r.bytes.buffer, r.bytes.byteOffset, r.bytes.byteLength));
    const safe = (r: GuestMemoryRegion): boolean => r.range.end <= BigInt(Number.MAX_SAFE_INTEGER) + 1n;
    this.numStart = Float64Array.from(sorted, (r) => (safe(r) ? Number(r.range.start.value) : NaN));
    this.numEnd = Float64Array.from(sorted, (r) => (safe(r) ? Number(r.range.end) : NaN));
  }

  private indexOf(addr: bigint): number {
    let lo = 0,
      hi = this.regions.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const r = this.regions[mid].range;
      if (addr < r.start.value) hi = mid - 1;
      else if (addr >= r.end) lo = mid + 1;
      else return mid;
    }
    return -1;
  }

  findRegion(addr: GuestAddress): GuestMemoryRegion | undefined {
    const i = this.indexOf(addr.value);
    return i < 0 ? undefined : this.regions[i];
  }

  /** Splits [addr, addr+length) into per-region pieces, or returns a reason it is invalid. */
  private plan(addr: bigint, length: bigint): Piece[] | string {
    if (this.closed) return 'guest memory is closed';
    if (length === 0n) {
      // An empty access is valid at any address inside guest memory or at a region's end.
      return this.indexOf(addr) >= 0 || this.regions.some((r) => r.range.end === addr)
        ? []
        : `${hex(addr)} is not in guest memory`;
    }
    let i = this.indexOf(addr);
    if (i < 0) return `${hex(addr)} is not in guest memory`;
    const end = addr + length;
    const pieces: Piece[] = [];
    let cur = addr;
    for (;;) {
      const region = this.regions[i];
      const r = region.range;
      const stop = end < r.end ? end : r.end;
      pieces.push({ region, index: i, offset: Number(cur - r.start.value), length: Number(stop - cur) });
      if (stop === end) return pieces;
      cur = stop;
      i++;
      if (i >= this.regions.length || this.regions[i].range.start.value !== cur) {
        return `[${hex(addr)}, ${hex(end)}) runs past guest memory at ${hex(cur)}`;
      }
    }
  }

  private pieces(addr: GuestAddress, length: number | bigint, what: string, forWrite = false): Piece[] {
    if (this.closed) throw new GuestMemoryError('Closed', `${what}: guest memory is closed`);
    const len = checkLength(length, what);
    const p = this.plan(addr.value, len);
    if (typeof p === 'string') {
      throw new GuestMemoryError('InvalidGuestAddress', `${what}: ${p}`, { addr: addr.value, length: len });
    }
    if (forWrite) {
      const ro = p.find((x) => x.region.readOnly);
      if (ro)
        throw new GuestMemoryError('ReadOnly', `${what}: ${ro.region.range} is read-only`, {
          addr: addr.value,
          length: len,
        });
    }
    return p;
  }

  isValidRange(addr: GuestAddress, length: number | bigint): boolean {
    let len: bigint;
    try {
      len = checkLength(length, 'isValidRange');
    } catch {
      return false;
    }
    return typeof this.plan(addr.value, len) !== 'string';
  }

  read(addr: GuestAddress, length: number): Uint8Array {
    // Check before allocating: a hostile length must not make us allocate gigabytes.
    const pieces = this.pieces(addr, length, 'read');
    const out = new Uint8Array(length);
    let o = 0;
    for (const p of pieces) {
      out.set(p.region.bytes.subarray(p.offset, p.offset + p.length), o);
      o += p.length;
    }
    return out;
  }

  readInto(addr: GuestAddress, into: Uint8Array): void {
    let o = 0;
    for (const p of this.pieces(addr, into.length, 'read')) {
      into.set(p.region.bytes.subarray(p.offset, p.offset + p.length), o);
      o += p.length;
    }
  }

  write(addr: GuestAddress, data: Uint8Array): void {
    let o = 0;
    for (const p of this.pieces(addr, data.length, 'write', true)) {
      p.region.bytes.set(data.subarray(o, o + p.length), p.offset);
      o += p.length;
    }
  }

  fill(addr: GuestAddress, length: number, value: number): void {
    for (const p of this.pieces(addr, length, 'fill', true)) p.region.bytes.fill(value, p.offset, p.offset + p.length);
  }

  slice(addr: GuestAddress, length: number, access: MemoryAccess = 'read'): Uint8Array {
    const p = this.pieces(addr, length, 'slice', access === 'write');
    if (p.length === 0) return new Uint8Array(0);
    if (p.length > 1) {
      throw new GuestMemoryError(
        'NotContiguous',
        `slice: [${addr}, +${length}) crosses a region boundary; use slices()`,
        { addr: addr.value, length },
      );
    }
    return p[0].region.bytes.subarray(p[0].offset, p[0].offset + p[0].length);
  }

  slices(addr: GuestAddress, length: number, access: MemoryAccess = 'read'): Uint8Array[] {
    return this.pieces(addr, length, 'slices', access === 'write').map((p) =>
      p.region.bytes.subarray(p.offset, p.offset + p.length),
    );
  }

  sliceAt(addr: number, length: number, access: MemoryAccess = 'read'): Uint8Array | undefined {
    if (this.closed || !Number.isSafeInteger(addr) || !Number.isSafeInteger(length) || length <= 0) return undefined;
    const starts = this.numStart;
    for (let i = 0; i < starts.length; i++) {
      const start = starts[i]!;
      if (addr >= start && addr + length <= this.numEnd[i]!) {
        const r = this.regions[i]!;
        if (access === 'write' && r.readOnly) return undefined;
        return r.bytes.subarray(addr - start, addr - start + length);
      }
    }
    return undefined;
  }

  /** DataView + offset when [addr, addr+width) lies in one region; else undefined (spanning, slow path). */
  private int(
    addr: GuestAddress,
    width: number,
    what: string,
    forWrite: boolean,
  ): { dv: DataView; off: number } | undefined {
    const p = this.pieces(addr, width, what, forWrite);
    return p.length === 1 ? { dv: this.views[p[0].index], off: p[0].offset } : undefined;
  }

  readU8(addr: GuestAddress): number {
    const x = this.int(addr, 1, 'readU8', false)!;
    return x.dv.getUint8(x.off);
  }
  readU16(addr: GuestAddress): number {
    const x = this.int(addr, 2, 'readU16', false);
    return x ? x.dv.getUint16(x.off, true) : new DataView(this.read(addr, 2).buffer).getUint16(0, true);
  }
  readU32(addr: GuestAddress): number {
    const x = this.int(addr, 4, 'readU32', false);
    return x ? x.dv.getUint32(x.off, true) : new DataView(this.read(addr, 4).buffer).getUint32(0, true);
  }
  readU64(addr: GuestAddress): bigint {
    const x = this.int(addr, 8, 'readU64', false);
    return x ? x.dv.getBigUint64(x.off, true) : new DataView(this.read(addr, 8).buffer).getBigUint64(0, true);
  }

  writeU8(addr: GuestAddress, v: number): void {
    const x = this.int(addr, 1, 'writeU8', true)!;
    x.dv.setUint8(x.off, v);
  }
  writeU16(addr: GuestAddress, v: number): void {
    const x = this.int(addr, 2, 'writeU16', true);
    if (x) x.dv.setUint16(x.off, v, true);
    else this.write(addr, leBytes(2, BigInt(v & 0xffff)));
  }
  writeU32(addr: GuestAddress, v: number): void {
    const x = this.int(addr, 4, 'writeU32', true);
    if (x) x.dv.setUint32(x.off, v, true);
    else this.write(addr, leBytes(4, BigInt(v >>> 0)));
  }
  writeU64(addr: GuestAddress, v: bigint): void {
    const x = this.int(addr, 8, 'writeU64', true);
    if (x) x.dv.setBigUint64(x.off, v, true);
    else this.write(addr, leBytes(8, BigInt.asUintN(64, v)));
  }

  readLayout<L extends Layout>(addr: GuestAddress, layout: L, size: number): LayoutValues<L> {
    checkLayout(layout, size);
    const dv = new DataView(this.read(addr, size).buffer);
    const out: Record<string, number | bigint> = {};
    for (const [k, f] of Object.entries(layout)) out[k] = getField(dv, f.offset, f.type);
    return out as LayoutValues<L>;
  }

  writeLayout<L extends Layout>(addr: GuestAddress, layout: L, size: number, values: Partial<LayoutValues<L>>): void {
    checkLayout(layout, size);
    // Validate the whole struct first so an invalid address touches nothing.
    this.pieces(addr, size, 'writeLayout', true);
    for (const [k, v] of Object.entries(values)) {
      const f = layout[k];
      if (!f) throw new GuestMemoryError('Layout', `writeLayout: field '${k}' is not in the layout`, { field: k });
      if (v === undefined) continue;
      const a = addr.add(f.offset);
      switch (f.type) {
        case 'u8':
          this.writeU8(a, Number(v));
          break;
        case 'u16':
          this.writeU16(a, Number(v));
          break;
        case 'u32':
          this.writeU32(a, Number(v));
          break;
        case 'u64':
          this.writeU64(a, BigInt(v as bigint));
          break;
      }
    }
  }

  readFromFile(fd: number, addr: GuestAddress, length: number, position: bigint | number): number {
    return this.fileIo('readFromFile', fd, addr, length, BigInt(position), true);
  }

  writeToFile(fd: number, addr: GuestAddress, length: number, position: bigint | number): number {
    return this.fileIo('writeToFile', fd, addr, length, BigInt(position), false);
  }

  /**
   * pread/pwrite straight between the file and guest RAM (no copy through JS) when the
   * region has a host address; through the region's view for the heap backend.
   * Stops early at end of file (short read) and returns the bytes transferred.
   */
  private fileIo(
    what: string,
    fd: number,
    addr: GuestAddress,
    length: number,
    position: bigint,
    intoGuest: boolean,
  ): number {
    if (position < 0n) throw new GuestMemoryError('Io', `${what}: negative file position ${position}`, { position });
    let done = 0;
    for (const p of this.pieces(addr, length, what, intoGuest)) {
      let pieceDone = 0;
      while (pieceDone < p.length) {
        const want = p.length - pieceDone;
        const pos = position + BigInt(done);
        let n: number;
        if (p.region.hostAddress !== 0n) {
          // SAFETY: hostAddress + offset .. + want lies inside this region's live mapping (checked by pieces());
          // the mapping stays until close(). The fd is owned by the caller.
          const host = p.region.hostAddress + BigInt(p.offset + pieceDone);
          const r = intoGuest ? c.preadAddr(fd, host, want, pos) : c.pwriteAddr(fd, host, want, pos);
          n = Number(r);
          if (n < 0) {
            const e = errno();
            if (e === ERRNO.EINTR) continue;
            throw new GuestMemoryError(
              'Io',
              `${what}: ${new NativeError(intoGuest ? 'pread' : 'pwrite', e).message}`,
              { fd, addr: addr.value, length },
              { cause: new NativeError(intoGuest ? 'pread' : 'pwrite', e) },
            );
          }
        } else {
          const view = p.region.bytes.subarray(p.offset + pieceDone, p.offset + p.length);
          try {
            n = intoGuest
              ? fs.readSync(fd, view, 0, view.length, pos)
              : fs.writeSync(fd, view, 0, view.length, Number(pos));
          } catch (err) {
            throw new GuestMemoryError(
              'Io',
              `${what}: ${(err as Error).message}`,
              { fd, addr: addr.value, length },
              { cause: err },
            );
          }
        }
        if (n === 0) return done; // end of file
        pieceDone += n;
        done += n;
      }
    }
    return done;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.release();
  }

  get isClosed(): boolean {
    return this.closed;
  }
}

function leBytes(n: number, v: bigint): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    b[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return b;
}

function checkLayout(layout: Layout, size: number): void {
  if (!Number.isSafeInteger(size) || size < 0)
    throw new GuestMemoryError('Layout', `layout size ${size} is invalid`, { size });
  for (const [k, f] of Object.entries(layout)) {
    if (!Number.isSafeInteger(f.offset) || f.offset < 0 || f.offset + WIDTH[f.type] > size) {
      throw new GuestMemoryError(
        'Layout',
        `layout field '${k}' (${f.type} at ${f.offset}) does not fit in ${size} bytes`,
        { field: k },
      );
    }
  }
}

function getField(dv: DataView, off: number, t: FieldType): number | bigint {
  switch (t) {
    case 'u8':
      return dv.getUint8(off);
    case 'u16':
      return dv.getUint16(off, true);
    case 'u32':
      return dv.getUint32(off, true);
    case 'u64':
      return dv.getBigUint64(off, true);
  }
}

/** Helper for backends: builds a region record. */
export function makeRegion(
  start: bigint,
  bytes: Uint8Array,
  hostAddress: bigint,
  backing: GuestMemoryRegion['backing'],
  readOnly = false,
): GuestMemoryRegion {
  return { range: GuestRange.of(start, bytes.length), hostAddress, bytes, backing, readOnly };
}
