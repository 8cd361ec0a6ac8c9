import { QcowError } from './errors.js';
import { AUTOCLEAR_BITMAPS, COMPAT_LAZY_REFCOUNTS } from './header.js';
import type { Qcow2Image } from './image.js';
import { RefCounter } from './ref-counter.js';
import { getRefcount } from './refcount-entry.js';
import { readBitmaps, readSnapshotTable } from './snapshot-table.js';

/** What `check -r` may fix: 'leaks' lowers refcounts that are too high; 'all' also raises those that are too low. */
export type RepairMode = 'leaks' | 'all';

/** The result of checkImage, in qemu-img check's terms (counts of clusters, offsets in bytes). */
export interface CheckReport {
  /** Clusters whose refcount is below the number of references, and broken entries. */
  corruptions: number;
  /** Clusters whose refcount is above the number of references (wasted space, no harm). */
  leaks: number;
  corruptionsFixed: number;
  leaksFixed: number;
  /** Guest clusters with data (normal or compressed) and the disk's cluster count. */
  allocatedClusters: number;
  totalClusters: number;
  imageEndOffset: number;
  /** Internal snapshots whose tables were counted. */
  snapshots: number;
  /** Why a requested repair was not done (nothing was changed), when it was refused. */
  repairRefused?: string;
  /** One line per finding, in qemu-img check's wording (the first MAX_MESSAGES). */
  messages: string[];
}

/** Findings beyond this many are counted but not listed (a hostile image can have millions). */
export const MAX_MESSAGES = 1000;
/** L1 entries read per chunk when streaming a snapshot's L1 table. */
const L1_CHUNK = 65536;

/**
 * Counts every reference to every host cluster the way `qemu-img check` does — header, active
 * L1, refcount table and blocks, L2 tables and data/compressed clusters under the active L1 and
 * under every internal snapshot's L1, the snapshot table, and (while the image says they are
 * valid) persistent bitmaps — and compares with the stored refcounts.
 *
 * `repair: 'leaks'` lowers refcounts that are too high; `'all'` also raises those that are too
 * low (after a dirty shutdown with lazy refcounts). A repair is refused, changing nothing, when
 * some reference could not be followed (a broken table or entry) or the image uses a feature
 * this code does not know: freeing "leaks" then could free live data.
 *
 * Memory is bounded by the file's real size (2 bytes and 2 bits per cluster, see RefCounter)
 * and time by the tables actually present: each L2 table is read once however many L1 entries
 * share it, and snapshot L1 tables may not add up to more than the file holds.
 */
export async function checkImage(img: Qcow2Image, opts: { repair?: RepairMode } = {}): Promise<CheckReport> {
  const cs = img.cs;
  const h = img.header;
  const report: CheckReport = {
    corruptions: 0,
    leaks: 0,
    corruptionsFixed: 0,
    leaksFixed: 0,
    allocatedClusters: 0,
    totalClusters: Math.ceil(h.size / cs),
    imageEndOffset: img.file.size,
    snapshots: 0,
    messages: [],
  };
  const refs = new RefCounter(img.file.size, cs);
  const active = new Uint8Array(Math.ceil(refs.clusters / 8));
  let unfollowed = 0;
  let unlisted = 0;
  const say = (line: string): void => {
    if (report.messages.length < MAX_MESSAGES) report.messages.push(line);
    else unlisted++;
  };
  const corrupt = (msg: string): void => {
    report.corruptions++;
    say(`ERROR ${msg}`);
  };
  /** A reference that could not be followed: what it points to is unknown, so no repair. */
  const cannot = (msg: string): void => {
    unfollowed++;
    corrupt(msg);
  };
  const guard = async (what: string, fn: () => Promise<void> | void): Promise<void> => {
    try {
      await fn();
    } catch (e) {
      if (!(e instanceof QcowError)) throw e;
      cannot(`${what}: ${e.message}`);
    }
  };
  const addRange = (offset: number, bytes: number, what: string, times = 1): void => {
    if (bytes <= 0) return;
    const last = Math.floor((offset + bytes - 1) / cs);
    for (let c = Math.floor(offset / cs); c <= last; c++) {
      if (c >= refs.clusters) {
        cannot(`${what} (${offset}+${bytes}) runs past the end of the file`);
        return;
      }
      refs.add(c, times);
    }
  };

  // 1. The tables that lead to L2 tables: the active L1 and each snapshot's L1 (with their multiplicity).
  const l1Tables: Array<{ what: string; offset: number; size: number; times: number; isActive: boolean }> = [
    { what: 'L1', offset: h.l1TableOffset, size: h.l1Size, times: 1, isActive: true },
  ];
  let snapshotTableBytes = 0;
  if (h.nbSnapshots > 0) {
    await guard('snapshot table', async () => {
      const t = await readSnapshotTable(img.file, h);
      snapshotTableBytes = t.bytes;
      const seen = new Map<string, (typeof l1Tables)[number]>();
      let budget = img.file.size / 8;
      for (const s of t.snapshots) {
        const key = `${s.l1Offset}:${s.l1Size}`;
        const same = seen.get(key);
        if (same) {
          same.times++;
          continue;
        }
        budget -= s.l1Size;
        if (budget < 0) {
          cannot(`snapshot ${s.index}: the snapshots' L1 tables add up to more than the file holds`);
          break;
        }
        const entry = { what: `snapshot ${s.index} L1`, offset: s.l1Offset, size: s.l1Size, times: 1, isActive: false };
        seen.set(key, entry);
        l1Tables.push(entry);
      }
      report.snapshots = t.snapshots.length;
    });
  }
  for (const t of l1Tables) {
    for (let first = 0; first < t.size; first += L1_CHUNK) {
      const n = Math.min(L1_CHUNK, t.size - first);
      let chunk: Uint8Array;
      if (t.isActive) chunk = img.map.l1.subarray(first * 8, (first + n) * 8);
      else {
        chunk = new Uint8Array(n * 8);
        await img.file.read(chunk, t.offset + first * 8);
      }
      const dv = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      for (let j = 0; j < n; j++) {
        const v = dv.getBigUint64(j * 8);
        const off = Number(v & 0x00fffffffffffe00n);
        if (v & 0x7f000000000001ffn) {
          cannot(`${t.what} entry ${first + j} has reserved bits set`);
          continue;
        }
        if (off === 0) continue;
        if (off % cs !== 0 || off < cs || off >= img.file.size) {
          cannot(`${t.what} entry ${first + j}: L2 table offset ${off} is not a cluster of the file`);
          continue;
        }
        refs.add(off / cs, t.times);
        refs.mark(off / cs);
        if (t.isActive) active[(off / cs) >> 3] = active[(off / cs) >> 3]! | (1 << ((off / cs) & 7));
      }
    }
  }
  // Each L2 table with the number of L1 entries (active and snapshots) that lead to it.
  const l2 = [...refs.markedClusters()];
  const l2Times = Uint32Array.from(l2, (c) => refs.get(c));

  // 2. Metadata: header, L1 tables, refcount table and blocks, snapshot table, bitmaps.
  addRange(0, cs, 'header');
  for (const t of l1Tables) addRange(t.offset, t.size * 8, `${t.what} table`, t.times);
  const rt = img.refs.tableLocation;
  addRange(rt.offset, rt.clusters * cs, 'refcount table');
  for (let i = 0; i < img.refs.entries; i++) {
    await guard(`refcount table entry ${i}`, () => {
      const off = img.refs.blockOffset(i);
      if (off !== 0) refs.add(off / cs);
    });
  }
  if (snapshotTableBytes > 0) addRange(h.snapshotsOffset, snapshotTableBytes, 'snapshot table');
  if (h.bitmaps && h.autoclear & AUTOCLEAR_BITMAPS) {
    await guard('bitmaps', async () => {
      const b = await readBitmaps(img.file, h);
      addRange(h.bitmaps!.directoryOffset, b.directoryBytes, 'bitmap directory');
      for (const t of b.tables) addRange(t.offset, t.bytes, 'bitmap table');
      for (const c of b.data) refs.add(c);
    });
  }

  // 3. Data and compressed clusters under every L2 table, each table read once.
  const table = new Uint8Array(cs);
  const per = cs / 8;
  for (let k = 0; k < l2.length; k++) {
    const c = l2[k]!;
    const times = l2Times[k]!;
    const isActive = (active[c >> 3]! & (1 << (c & 7))) !== 0;
    await img.file.read(table, c * cs);
    for (let j = 0; j < per; j++) {
      let m;
      try {
        m = img.map.decode(table, j, j);
      } catch (e) {
        if (!(e instanceof QcowError)) throw e;
        cannot(`L2 table at cluster ${c}, entry ${j}: ${e.message}`);
        continue;
      }
      if (m.t === 'data' || m.t === 'zero-alloc') {
        refs.add(m.host / cs, times);
        if (m.t === 'data' && isActive) report.allocatedClusters++;
      } else if (m.t === 'compressed') {
        const start = m.extent.offset - (m.extent.offset % 512);
        addRange(start, m.extent.sectors * 512, `compressed cluster (L2 table at cluster ${c}, entry ${j})`, times);
        if (isActive) report.allocatedClusters++;
      }
    }
  }

  // 4. Stored refcounts against references, one refcount block at a time.
  const unknownCompat = h.compatible & ~COMPAT_LAZY_REFCOUNTS;
  let overflow = 0;
  const compare = async (
    fix: ((c: number, want: number, leak: boolean) => Promise<void>) | undefined,
  ): Promise<void> => {
    const span = img.refs.blockSpan;
    for (let i = 0; i * span < refs.clusters; i++) {
      let block: Uint8Array | undefined;
      try {
        block = await img.refs.blockAt(i);
      } catch (e) {
        if (!(e instanceof QcowError)) throw e;
        if (!fix) cannot(`cannot read the refcounts of clusters ${i * span}..${(i + 1) * span - 1}: ${e.message}`);
        continue;
      }
      const end = Math.min(refs.clusters, (i + 1) * span);
      for (let c = i * span; c < end; c++) {
        const stored = block ? getRefcount(block, c - i * span, h.refcountOrder) : 0;
        const want = refs.get(c);
        if (stored === want) continue;
        if (want > img.refs.max) overflow++;
        if (fix) await fix(c, want, stored > want);
        else if (stored > want) {
          report.leaks++;
          say(`Leaked cluster ${c} refcount=${stored} reference=${want}`);
        } else corrupt(`cluster ${c} refcount=${stored} reference=${want}`);
      }
    }
  };
  await compare(undefined);

  if (opts.repair && !img.readOnly && report.leaks + report.corruptions > 0) {
    if (unfollowed > 0)
      report.repairRefused = `${unfollowed} reference(s) could not be followed, so what looks leaked may be in use`;
    else if (overflow > 0)
      report.repairRefused = `${overflow} cluster(s) have more references than a ${2 ** h.refcountOrder}-bit refcount holds`;
    else if (unknownCompat)
      report.repairRefused = `the image uses compatible features this tool does not know (0x${unknownCompat.toString(16)})`;
    if (report.repairRefused) say(`Repair refused: ${report.repairRefused}; the image was not changed`);
    else {
      img.refs.avoid = (c) => refs.get(c) > 0;
      try {
        await compare(async (c, want, leak) => {
          if (!leak && opts.repair !== 'all') return;
          await img.refs.set(c, want);
          if (leak) report.leaksFixed++;
          else report.corruptionsFixed++;
        });
        await img.refs.persist();
      } finally {
        img.refs.avoid = undefined;
      }
    }
  }

  // 5. OFLAG_COPIED of the active tables: set exactly where the (now stored) refcount is 1.
  const blocks = new Map<number, Uint8Array | undefined>();
  const fetch = async (i: number): Promise<Uint8Array | undefined> => {
    const b = await img.refs.blockAt(i);
    if (blocks.size > 64) blocks.clear();
    blocks.set(i, b);
    return b;
  };
  const span = img.refs.blockSpan;
  /** The stored refcount (-1: unreadable); awaits only when its refcount block is not at hand. */
  const stored = async (c: number): Promise<number> => {
    const i = Math.floor(c / span);
    try {
      const b = blocks.has(i) ? blocks.get(i) : await fetch(i);
      return b ? getRefcount(b, c % span, h.refcountOrder) : 0;
    } catch {
      return -1;
    }
  };
  const l1 = new DataView(img.map.l1.buffer, img.map.l1.byteOffset, img.map.l1.byteLength);
  let lastOff = -1;
  let lastCount = 0;
  for (let i = 0; i < img.map.l1Entries; i++) {
    const v = l1.getBigUint64(i * 8);
    const off = Number(v & 0x00fffffffffffe00n);
    if (off === 0 || v & 0x7f000000000001ffn || off % cs !== 0 || off >= img.file.size) continue; // reported above
    if (off !== lastOff) {
      lastOff = off;
      lastCount = await stored(off / cs);
    }
    if ((lastCount === 1) !== (v >> 63n === 1n))
      corrupt(`OFLAG_COPIED L2 cluster: l1_index=${i} refcount=${lastCount}`);
  }
  for (const c of l2) {
    if ((active[c >> 3]! & (1 << (c & 7))) === 0) continue;
    await img.file.read(table, c * cs);
    for (let j = 0; j < per; j++) {
      let m;
      try {
        m = img.map.decode(table, j, j);
      } catch {
        continue; // already reported
      }
      if (m.t !== 'data' && m.t !== 'zero-alloc') continue;
      const count = await stored(m.host / cs);
      if ((count === 1) !== m.copied)
        corrupt(`OFLAG_COPIED data cluster: host cluster ${m.host / cs} refcount=${count} copied=${m.copied}`);
    }
  }
  if (unlisted > 0) report.messages.push(`... and ${unlisted} more findings not listed`);
  report.imageEndOffset = img.file.size;
  return report;
}
