import type { DiskBackend } from '../../core/block/disk.js';
import { COMPRESSED_HI, COPIED_HI, ClusterMap, ZERO_LO, type Mapping } from './cluster-map.js';
import { compressCluster, decompressCluster, encodeCompressed } from './compression.js';
import { QcowError, fail } from './errors.js';
import { HDR_AUTOCLEAR, HDR_INCOMPAT, INCOMPAT_CORRUPT, INCOMPAT_DIRTY, type QcowHeader } from './header.js';
import type { HostFile } from './host-file.js';
import { Mutex, RwLock } from './locks.js';
import type { BackingReader, Extent } from './raw-backing.js';
import { Refcounts } from './refcounts.js';

const COPIED = 1n << 63n;

interface PendingAlloc {
  vc: number;
  m: Mapping;
  host: number;
  /** The cluster's full new contents: the caller's views (a whole-cluster write) or one merged buffer. */
  bufs: Uint8Array[];
  reuse: boolean;
}

/** Most clusters one pwritev of newly allocated clusters carries. */
const MAX_RUN_CLUSTERS = 256;

/** Hands out consecutive byte ranges of a list of buffers as views (no copy). */
class ViewCursor {
  private i = 0;
  private off = 0;
  constructor(private readonly bufs: readonly Uint8Array[]) {}

  /** Views of the next `n` bytes (the caller never asks past the end). */
  take(n: number): Uint8Array[] {
    const out: Uint8Array[] = [];
    while (n > 0) {
      const b = this.bufs[this.i]!;
      const k = Math.min(n, b.length - this.off);
      out.push(this.off === 0 && k === b.length ? b : b.subarray(this.off, this.off + k));
      this.off += k;
      n -= k;
      if (this.off === b.length) {
        this.i++;
        this.off = 0;
      }
    }
    return out;
  }
}
const ZERO = 1n;
/** Deferred frees above this make a request flush on its way out, so space is reused. */
const MAX_PENDING_FREES = 4096;
/** Metadata held in memory (dirty L2 tables and refcount blocks) above this makes a request flush on its way out. */
const MAX_DIRTY_BYTES = 16 * 1024 * 1024;

/**
 * An open qcow2 image as a DiskBackend, with write-back metadata as QEMU's cache=writeback:
 * guest data goes to the file at once (page cache), metadata changes (refcounts, L2 and L1
 * entries, new tables) stay in memory, and `flush()` (the guest's FLUSH, or the device's
 * write-through mode) is the durability point. There is no fdatasync between flushes.
 *
 * Ordering that keeps the file consistent after a crash, process kill or lost page cache
 * alike (at worst: leaked clusters, and writes after the last flush lost), see `persist`:
 * 1. data, refcount blocks (new ones whole) and new L2 tables are written, then synced;
 * 2. refcount table entries of new refcount blocks are written, then synced;
 * 3. changed L2 entries and L1 entries are written, then synced. So no L2/L1 entry on disk
 *    points at a cluster whose data or refcount is not there, nor at an unwritten table.
 * A cluster that stops being referenced (discard, overwrite of a shared/compressed cluster)
 * has its L2 entry changed first; its refcount drops only after step 3 of a flush, which runs
 * exclusive of in-flight requests, so nothing can still read or write it, nor does a durable
 * entry still point to it, when it is handed out again.
 */
export class Qcow2Image implements DiskBackend, BackingReader {
  readonly size: bigint;
  readonly virtualSize: number;
  readonly blockSize = 512;
  readonly supportsDiscard: boolean;
  readonly supportsWriteZeroes: boolean;
  readonly cs: number;
  private readonly metaLock = new Mutex();
  private readonly gate = new RwLock();
  private pendingFrees: number[] = [];
  private closed = false;
  private lastInflated: { offset: number; data: Uint8Array } | undefined;
  /** Byte position where the next compressed cluster may go (0: start a new host cluster). */
  private compressCursor = 0;

  constructor(
    readonly file: HostFile,
    readonly header: QcowHeader,
    readonly map: ClusterMap,
    readonly refs: Refcounts,
    readonly backing: BackingReader | undefined,
    readonly readOnly: boolean,
    /** Host clusters holding metadata (header, tables, refcount blocks, L2 tables). */
    readonly metadata: Set<number>,
  ) {
    this.cs = 2 ** header.clusterBits;
    this.virtualSize = header.size;
    this.size = BigInt(header.size);
    this.supportsDiscard = !readOnly;
    this.supportsWriteZeroes = !readOnly;
  }

  static async load(
    file: HostFile,
    header: QcowHeader,
    backing: BackingReader | undefined,
    readOnly: boolean,
  ): Promise<Qcow2Image> {
    const metadata = new Set<number>();
    const meta = { add: (c: number) => void metadata.add(c), delete: (c: number) => void metadata.delete(c) };
    const refs = await Refcounts.load(
      file,
      header.clusterBits,
      header.refcountOrder,
      header.refcountTableOffset,
      header.refcountTableClusters,
      meta,
    );
    const cs = 2 ** header.clusterBits;
    for (let c = 0; c < Math.ceil((header.l1Size * 8) / cs); c++) metadata.add(header.l1TableOffset / cs + c);
    const map = await ClusterMap.load(file, header.clusterBits, header.l1TableOffset, header.l1Size, (c) =>
      metadata.add(c),
    );
    return new Qcow2Image(file, header, map, refs, backing, readOnly, metadata);
  }

  // ---- DiskBackend ------------------------------------------------------------------

  async read(offset: bigint, into: Uint8Array[]): Promise<void> {
    const len = into.reduce((a, b) => a + b.length, 0);
    const off = this.checkRange(offset, len);
    if (into.length > 1 && (await this.gate.shared(() => this.readDirect(off, len, into)))) return;
    const flat = into.length === 1 ? into[0]! : new Uint8Array(len);
    await this.gate.shared(() => this.readAt(off, flat));
    if (into.length > 1) {
      let p = 0;
      for (const b of into) {
        b.set(flat.subarray(p, p + b.length));
        p += b.length;
      }
    }
  }

  async write(offset: bigint, from: Uint8Array[]): Promise<void> {
    this.writable();
    let len = 0;
    for (let i = 0; i < from.length; i++) len += from[i]!.length;
    const off = this.checkRange(offset, len);
    // The guest's buffers go to the file as they are (scatter-gather), not through a flat copy.
    await this.gate.shared(() => this.writeAt(off, from, len));
    await this.maybeReclaim();
  }

  async flush(): Promise<void> {
    this.live();
    if (this.readOnly) return;
    await this.gate.exclusive(() => this.persist());
  }

  /** Writes back the metadata in dependency order (see the class comment), then applies the deferred frees. */
  private async persist(): Promise<void> {
    await this.refs.writeBlocks();
    await this.map.writeFreshTables();
    await this.file.sync();
    if (await this.refs.writeEntries()) await this.file.sync();
    if (await this.map.writeTables()) await this.file.sync();
    await this.applyFrees();
  }

  async discard(offset: bigint, length: bigint): Promise<void> {
    this.writable();
    const off = this.checkRange(offset, Number(length));
    const len = Number(length);
    await this.gate.shared(() =>
      this.metaLock.run(async () => {
        const first = Math.ceil(off / this.cs);
        const end = Math.floor((off + len) / this.cs);
        const lastPartial = off + len === this.virtualSize && (off + len) % this.cs !== 0;
        for (let vc = first; vc < end + (lastPartial ? 1 : 0); vc++) {
          const m = await this.map.lookup(vc);
          // With a backing file, an unallocated cluster would show the backing data again;
          // version 3 can say "zeros" instead.
          const entry = this.header.version === 3 && this.backing ? ZERO : 0n;
          if (m.t === 'unallocated' && entry === 0n) continue;
          if (m.t === 'zero' && entry === ZERO) continue;
          await this.ensureL2(vc);
          await this.map.setEntry(vc, entry);
          this.release(m, false);
        }
      }),
    );
    await this.maybeReclaim();
  }

  async writeZeroes(offset: bigint, length: bigint, mayUnmap: boolean): Promise<void> {
    this.writable();
    const len = Number(length);
    const off = this.checkRange(offset, len);
    await this.gate.shared(async () => {
      const end = off + len;
      const first = Math.ceil(off / this.cs);
      let last = Math.floor(end / this.cs); // exclusive
      if (end === this.virtualSize && end % this.cs !== 0) last++;
      if (first >= last) {
        await this.writeAt(off, [new Uint8Array(len)], len);
        return;
      }
      if (off < first * this.cs)
        await this.writeAt(off, [new Uint8Array(first * this.cs - off)], first * this.cs - off);
      if (last * this.cs < end)
        await this.writeAt(last * this.cs, [new Uint8Array(end - last * this.cs)], end - last * this.cs);
      await this.metaLock.run(async () => {
        for (let vc = first; vc < last; vc++) await this.zeroCluster(vc, mayUnmap);
      });
    });
    await this.maybeReclaim();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.gate.exclusive(async () => {
      try {
        if (!this.readOnly) {
          await this.persist();
          await this.refs.releaseReserved();
          await this.refs.persist();
          await this.refs.trimEnd();
          await this.file.sync();
        }
      } finally {
        // Even when the last writes fail (ENOSPC, EIO), the fds and their locks go.
        this.closed = true;
        await this.file.close();
        await this.backing?.close();
      }
    });
  }

  // ---- reading ------------------------------------------------------------------------

  /**
   * Scatter-gather reads without a bounce buffer, for the common layouts: the whole range is one run of data
   * clusters contiguous in the file (one preadv straight into the buffers), or all zeros without a backing
   * file. False (nothing done) for anything else; readAt then does it through one flat buffer.
   */
  private async readDirect(off: number, len: number, into: Uint8Array[]): Promise<boolean> {
    this.live();
    if (len === 0) return true;
    if (off + len > this.virtualSize) return false;
    const ms = this.mappingsNow(off, off + len) ?? (await this.mappingsLocked(off, off + len));
    let host = -1;
    let zeros = true;
    let run: number | 'zeros' | undefined;
    for (let p = off, k = 0; ; k++) {
      const vc = Math.floor(p / this.cs);
      const inOff = p - vc * this.cs;
      const m = ms[k]!;
      if (m.t === 'data') {
        if (p === off) host = m.host + inOff;
        else if (host < 0 || m.host + inOff !== host + (p - off)) break;
        zeros = false;
      } else if (m.t === 'zero' || m.t === 'zero-alloc' || (m.t === 'unallocated' && !this.backing)) {
        if (host >= 0) break;
      } else break;
      if (!zeros && host < 0) break;
      p += Math.min(this.cs - inOff, off + len - p);
      if (p >= off + len) {
        run = zeros ? 'zeros' : host;
        break;
      }
    }
    if (run === undefined) return false;
    if (run === 'zeros') for (const b of into) b.fill(0);
    else await this.file.readv(into, run);
    return true;
  }

  /** Reads guest bytes at `off`; bytes past the virtual size read as zero (backing use). */
  async readAt(off: number, buf: Uint8Array): Promise<void> {
    this.live();
    const end = Math.min(off + buf.length, this.virtualSize);
    if (end < off + buf.length) buf.fill(0, Math.max(0, end - off));
    if (end <= off) return;
    const ms = this.mappingsNow(off, end) ?? (await this.mappingsLocked(off, end));
    const segs: Array<{ m: Mapping; vc: number; inOff: number; n: number; at: number }> = [];
    for (let p = off, k = 0; p < end; k++) {
      const vc = Math.floor(p / this.cs);
      const inOff = p - vc * this.cs;
      const n = Math.min(this.cs - inOff, end - p);
      segs.push({ m: ms[k]!, vc, inOff, n, at: p - off });
      p += n;
    }
    const jobs: Promise<void>[] = [];
    for (let i = 0; i < segs.length;) {
      const s = segs[i]!;
      const m = s.m;
      if (m.t === 'data') {
        // Merge runs that are contiguous in the file into one pread.
        let n = s.n;
        let j = i + 1;
        while (j < segs.length) {
          const nx = segs[j]!.m;
          if (nx.t !== 'data' || nx.host !== m.host + s.inOff + n) break;
          n += segs[j]!.n;
          j++;
        }
        jobs.push(this.file.read(buf.subarray(s.at, s.at + n), m.host + s.inOff));
        i = j;
        continue;
      }
      const dst = buf.subarray(s.at, s.at + s.n);
      if (m.t === 'zero' || m.t === 'zero-alloc') dst.fill(0);
      else if (m.t === 'unallocated') {
        if (this.backing) jobs.push(this.backing.readAt(s.vc * this.cs + s.inOff, dst));
        else dst.fill(0);
      } else {
        jobs.push(this.inflate(m).then((d) => dst.set(d.subarray(s.inOff, s.inOff + s.n))));
      }
      i++;
    }
    await Promise.all(jobs);
  }

  /**
   * The mappings of the guest clusters that [off, end) touches, at once: when no metadata update holds or waits
   * for the lock (so none is half done) and every L2 table needed is cached. Undefined otherwise.
   */
  private mappingsNow(off: number, end: number): Mapping[] | undefined {
    if (!this.metaLock.idle) return undefined;
    const out: Mapping[] = [];
    for (let vc = Math.floor(off / this.cs); vc * this.cs < end; vc++) {
      const m = this.map.lookupCached(vc);
      if (!m) return undefined;
      out.push(m);
    }
    return out;
  }

  /** mappingsNow() under the metadata lock, reading L2 tables as needed. */
  private mappingsLocked(off: number, end: number): Promise<Mapping[]> {
    return this.metaLock.run(async () => {
      const out: Mapping[] = [];
      for (let vc = Math.floor(off / this.cs); vc * this.cs < end; vc++) out.push(await this.map.lookup(vc));
      return out;
    });
  }

  private async inflate(m: Extract<Mapping, { t: 'compressed' }>): Promise<Uint8Array> {
    const { offset, length } = m.extent;
    if (this.lastInflated?.offset === offset) return this.lastInflated.data;
    const avail = Math.min(length, this.file.size - offset);
    const raw = new Uint8Array(avail);
    await this.file.read(raw, offset);
    const data = decompressCluster(raw, this.cs, this.header.compressionType);
    this.lastInflated = { offset, data };
    return data;
  }

  /**
   * Guest ranges of [from, to) that may hold data: data and compressed clusters, and whatever
   * the backing file has under unallocated ones. Walks the L1 table and the L2 tables that
   * exist, so a 2^50-byte disk with three clusters of data costs three clusters' worth of work.
   */
  async *allocated(from: number, to: number): AsyncGenerator<Extent> {
    this.live();
    const end = Math.min(to, this.virtualSize);
    const per = 2 ** this.map.l2Bits;
    const span = per * this.cs;
    let run: Extent | undefined;
    const take = function* (s: number, e: number): Generator<Extent> {
      if (run && run[1] === s) run[1] = e;
      else {
        if (run) yield run;
        run = [s, e];
      }
    };
    for (let i = Math.floor(from / span); i * span < end; i++) {
      const table = this.map.l2Offset(i) === 0 ? undefined : await this.metaLock.run(() => this.map.l2Table(i));
      if (!table) {
        if (this.backing) {
          for await (const [s, e] of this.backing.allocated(Math.max(from, i * span), Math.min(end, (i + 1) * span)))
            yield* take(s, e);
        }
        continue;
      }
      for (let j = 0; j < per; j++) {
        const s = Math.max(from, (i * per + j) * this.cs);
        const e = Math.min(end, (i * per + j + 1) * this.cs);
        if (s >= e) continue;
        const m = this.map.decode(table, j, i * per + j);
        if (m.t === 'data' || m.t === 'compressed') yield* take(s, e);
        else if (m.t === 'unallocated' && this.backing) {
          for await (const [bs, be] of this.backing.allocated(s, e)) yield* take(bs, be);
        }
      }
    }
    if (run) yield run;
  }

  // ---- writing ------------------------------------------------------------------------

  /** Writes the `len` bytes of `data` (buffers back to back) at guest offset `off`. */
  private async writeAt(off: number, data: readonly Uint8Array[], len: number): Promise<void> {
    const inPlace: Array<{ pos: number; len: number; bufs: Uint8Array[] }> = [];
    const allocs: PendingAlloc[] = [];
    const cursor = new ViewCursor(data);
    await this.metaLock.run(async () => {
      for (let p = off; p < off + len;) {
        const vc = Math.floor(p / this.cs);
        const inOff = p - vc * this.cs;
        const n = Math.min(this.cs - inOff, off + len - p);
        const d = cursor.take(n);
        const m = await this.map.lookup(vc);
        if (m.t === 'data' && m.copied) {
          await this.assertNotMetadata(m.host);
          const prev = inPlace[inPlace.length - 1];
          if (prev && prev.pos + prev.len === m.host + inOff) {
            // Contiguous in the file: one pwritev for the run.
            for (let k = 0; k < d.length; k++) prev.bufs.push(d[k]!);
            prev.len += n;
          } else inPlace.push({ pos: m.host + inOff, len: n, bufs: d });
        } else {
          allocs.push(await this.prepareAlloc(vc, m, inOff, d, n));
        }
        p += n;
      }
      await this.commitAllocs(allocs);
    });
    await Promise.all(
      inPlace.map((w) => (w.bufs.length === 1 ? this.file.write(w.bufs[0]!, w.pos) : this.file.writev(w.bufs, w.pos))),
    );
  }

  /** Writes into a cluster that needs a new host cluster (or a preallocated zero cluster). */
  private async allocWrite(vc: number, m: Mapping, inOff: number, d: Uint8Array): Promise<void> {
    await this.commitAllocs([await this.prepareAlloc(vc, m, inOff, [d], d.length)]);
  }

  /**
   * Picks the host cluster and its full contents: the `n` bytes of `d` as they are when they cover the whole
   * cluster, else one buffer with the rest copied in (copy-on-write).
   */
  private async prepareAlloc(vc: number, m: Mapping, inOff: number, d: Uint8Array[], n: number): Promise<PendingAlloc> {
    const reuse = m.t === 'zero-alloc' && m.copied;
    let host: number;
    if (reuse) {
      await this.assertNotMetadata(m.host);
      host = m.host;
    } else {
      host = await this.alloc();
    }
    let bufs = d;
    if (n !== this.cs) {
      const buf = new Uint8Array(this.cs);
      await this.oldContents(vc, m, buf);
      let at = inOff;
      for (const b of d) {
        buf.set(b, at);
        at += b.length;
      }
      bufs = [buf];
    }
    return { vc, m, host, bufs, reuse };
  }

  /**
   * Writes the data of new clusters (runs contiguous in the file go as one pwritev, all in
   * parallel), and only then points the L2 entries at them.
   */
  private async commitAllocs(allocs: PendingAlloc[]): Promise<void> {
    if (allocs.length === 0) return;
    const runs: Array<{ pos: number; clusters: number; bufs: Uint8Array[] }> = [];
    for (const a of allocs) {
      const last = runs[runs.length - 1];
      if (last && last.pos + last.clusters * this.cs === a.host && last.clusters < MAX_RUN_CLUSTERS) {
        for (let k = 0; k < a.bufs.length; k++) last.bufs.push(a.bufs[k]!);
        last.clusters++;
      } else runs.push({ pos: a.host, clusters: 1, bufs: a.bufs.slice() });
    }
    await Promise.all(
      runs.map((r) => (r.bufs.length === 1 ? this.file.write(r.bufs[0]!, r.pos) : this.file.writev(r.bufs, r.pos))),
    );
    for (const a of allocs) {
      await this.ensureL2(a.vc);
      await this.map.setEntry(a.vc, BigInt(a.host) | COPIED);
      this.release(a.m, a.reuse);
    }
  }

  /** What a cluster reads as now, for copy-on-write of a partial write. */
  private async oldContents(vc: number, m: Mapping, buf: Uint8Array): Promise<void> {
    switch (m.t) {
      case 'unallocated':
        if (this.backing) await this.backing.readAt(vc * this.cs, buf);
        return;
      case 'data':
        await this.file.read(buf, m.host);
        return;
      case 'compressed':
        buf.set(await this.inflate(m));
        return;
      default:
        return; // zero clusters: buf is already zeros
    }
  }

  private async zeroCluster(vc: number, mayUnmap: boolean): Promise<void> {
    const m = await this.map.lookup(vc);
    if (this.header.version === 2) {
      if (this.backing) {
        await this.allocWrite(vc, m, 0, new Uint8Array(this.cs));
        return;
      }
      if (m.t === 'unallocated') return;
      await this.map.setEntry(vc, 0n);
      this.release(m, false);
      return;
    }
    if (m.t === 'zero' || (m.t === 'unallocated' && !this.backing)) return;
    if (!mayUnmap && (m.t === 'data' || m.t === 'zero-alloc') && m.copied) {
      if (m.t === 'zero-alloc') return;
      await this.map.setEntry(vc, BigInt(m.host) | COPIED | ZERO);
      return;
    }
    await this.ensureL2(vc);
    await this.map.setEntry(vc, ZERO);
    this.release(m, false);
  }

  /**
   * Stores one whole guest cluster compressed (for convert -c). The cluster must be
   * unallocated. Compressed clusters pack into host clusters; each host cluster's
   * refcount counts the compressed clusters inside it.
   */
  async writeCompressed(vc: number, data: Uint8Array): Promise<void> {
    this.writable();
    if (data.length !== this.cs) fail('Range', 'compressed writes take exactly one cluster');
    await this.gate.shared(() =>
      this.metaLock.run(async () => {
        const m = await this.map.lookup(vc);
        if (m.t !== 'unallocated')
          fail('Unsupported', `compressed writes go to unallocated clusters only (guest cluster ${vc})`);
        const c = compressCluster(data);
        if (c.length >= this.cs) {
          await this.allocWrite(vc, m, 0, data);
          return;
        }
        let pos = this.compressCursor;
        const hostCluster = Math.floor(pos / this.cs);
        if (pos === 0 || (pos % this.cs) + c.length > this.cs || (await this.refs.get(hostCluster)) >= this.refs.max) {
          pos = await this.alloc();
        } else {
          await this.refs.update(hostCluster, 1);
        }
        await this.file.write(c, pos);
        await this.ensureL2(vc);
        await this.map.setEntry(vc, encodeCompressed(pos, c.length, this.header.clusterBits));
        this.compressCursor = (pos + c.length) % this.cs === 0 ? 0 : pos + c.length;
      }),
    );
  }

  /** Makes sure guest cluster `vc` has a writable L2 table. */
  private async ensureL2(vc: number): Promise<void> {
    const i = Math.floor(vc / 2 ** this.map.l2Bits);
    if (this.map.l2Offset(i) !== 0) {
      if (!this.map.l1Copied(i))
        fail('Unsupported', `L2 table ${i} is shared (internal snapshot); the image cannot be written`);
      return;
    }
    const host = await this.alloc();
    this.map.installL2(i, host, new Uint8Array(this.cs));
  }

  /** A fresh host cluster (byte offset). A hostile refcount block could offer metadata: refuse it. */
  private async alloc(): Promise<number> {
    const host = (await this.refs.allocCluster()) * this.cs;
    await this.assertNotMetadata(host);
    return host;
  }

  /** Queues the host clusters a mapping held, to be freed at the next flush. */
  private release(m: Mapping, reused: boolean): void {
    if ((m.t === 'data' || m.t === 'zero-alloc') && !reused) this.pendingFrees.push(m.host / this.cs);
    if (m.t === 'compressed') {
      const start = m.extent.offset - (m.extent.offset % 512);
      const first = Math.floor(start / this.cs);
      const last = Math.floor((start + m.extent.sectors * 512 - 1) / this.cs);
      for (let c = first; c <= last; c++) this.pendingFrees.push(c);
      if (this.lastInflated?.offset === m.extent.offset) this.lastInflated = undefined;
    }
  }

  private async applyFrees(): Promise<void> {
    const frees = this.pendingFrees;
    this.pendingFrees = [];
    for (const c of frees) {
      const left = await this.refs.update(c, -1);
      if (left === 0) this.metadata.delete(c);
      if (this.compressCursor !== 0 && Math.floor(this.compressCursor / this.cs) === c && left === 0)
        this.compressCursor = 0;
    }
  }

  private async maybeReclaim(): Promise<void> {
    if (this.pendingFrees.length > MAX_PENDING_FREES || this.map.dirtyBytes + this.refs.dirtyBytes > MAX_DIRTY_BYTES)
      await this.flush();
  }

  private async assertNotMetadata(host: number): Promise<void> {
    const c = host / this.cs;
    if (!this.metadata.has(c)) return;
    await this.markCorrupt();
    fail(
      'MetadataOverlap',
      `refusing a guest write to host cluster ${c}: it holds image metadata; the image is marked corrupt`,
      { cluster: c },
    );
  }

  /** Sets the corrupt bit (version 3) so that no one opens the image read-write again. */
  async markCorrupt(): Promise<void> {
    if (this.header.version !== 3) return;
    this.header.incompatible |= INCOMPAT_CORRUPT;
    await this.writeIncompat();
  }

  /** Clears the dirty bit after refcounts were repaired. */
  async clearDirty(): Promise<void> {
    this.header.incompatible &= ~INCOMPAT_DIRTY;
    await this.writeIncompat();
  }

  /** Autoclear bits name extensions we do not maintain (bitmaps): disown them on read-write open. */
  async clearAutoclear(): Promise<void> {
    if (this.header.version !== 3 || this.header.autoclear === 0n) return;
    this.header.autoclear = 0n;
    const b = new Uint8Array(8);
    await this.file.write(b, HDR_AUTOCLEAR);
    await this.file.sync();
  }

  private async writeIncompat(): Promise<void> {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, this.header.incompatible);
    await this.file.write(b, HDR_INCOMPAT);
    await this.file.sync();
  }

  // ---- guards -------------------------------------------------------------------------

  private checkRange(offset: bigint, len: number): number {
    this.live();
    if (offset < 0n || len < 0 || offset + BigInt(len) > this.size) {
      throw new QcowError('Range', `request ${offset}+${len} is outside the disk (${this.size} bytes)`, {
        offset: offset.toString(),
        len,
      });
    }
    return Number(offset);
  }

  private writable(): void {
    this.live();
    if (this.readOnly) throw new QcowError('ReadOnly', `${this.file.path} is open read-only`);
  }

  private live(): void {
    if (this.closed) throw new QcowError('Closed', `${this.file.path} is closed`);
  }
}

export { COMPRESSED_HI, COPIED_HI, ZERO_LO };
