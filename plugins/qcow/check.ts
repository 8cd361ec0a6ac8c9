import { QcowError } from './errors.js';
import type { Qcow2Image } from './image.js';

export type RepairMode = 'leaks' | 'all';

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
  /** One line per finding, in qemu-img check's wording. */
  messages: string[];
}

/**
 * Counts every reference to every host cluster (header, L1, refcount table and blocks,
 * L2 tables, data and compressed clusters) and compares with the stored refcounts, like
 * `qemu-img check`. `repair: 'leaks'` lowers refcounts that are too high; `'all'` also
 * raises refcounts that are too low (used after a dirty shutdown with lazy refcounts).
 */
export async function checkImage(img: Qcow2Image, opts: { repair?: RepairMode } = {}): Promise<CheckReport> {
  const cs = img.cs;
  const h = img.header;
  const report: CheckReport = {
    corruptions: 0, leaks: 0, corruptionsFixed: 0, leaksFixed: 0,
    allocatedClusters: 0, totalClusters: Math.ceil(h.size / cs), imageEndOffset: img.file.size, messages: [],
  };
  const refs = new Map<number, number>();
  const inc = (c: number): void => void refs.set(c, (refs.get(c) ?? 0) + 1);
  const copiedFlags: Array<{ cluster: number; copied: boolean; what: string }> = [];
  const corrupt = (msg: string): void => {
    report.corruptions++;
    report.messages.push(`ERROR ${msg}`);
  };

  inc(0);
  for (let c = 0; c < Math.ceil((h.l1Size * 8) / cs); c++) inc(h.l1TableOffset / cs + c);
  const rt = img.refs.tableLocation;
  for (let c = 0; c < rt.clusters; c++) inc(rt.offset / cs + c);
  for (let i = 0; i < img.refs.entries; i++) {
    try {
      const off = img.refs.blockOffset(i);
      if (off !== 0) inc(off / cs);
    } catch (e) {
      if (!(e instanceof QcowError)) throw e;
      corrupt(e.message);
    }
  }
  if (h.nbSnapshots > 0) report.messages.push(`note: ${h.nbSnapshots} internal snapshot(s) are not checked`);

  const map = img.map;
  const per = 2 ** map.l2Bits;
  for (let i = 0; i < map.l1Entries; i++) {
    let table: Uint8Array | undefined;
    try {
      const off = map.l2Offset(i);
      if (off === 0) continue;
      inc(off / cs);
      copiedFlags.push({ cluster: off / cs, copied: map.l1Copied(i), what: `L1 entry ${i}` });
      table = await map.l2Table(i);
    } catch (e) {
      if (!(e instanceof QcowError)) throw e;
      corrupt(e.message);
      continue;
    }
    if (!table) continue;
    for (let j = 0; j < per; j++) {
      const vc = i * per + j;
      try {
        const m = map.decode(table, j, vc);
        if (m.t === 'data' || m.t === 'zero-alloc') {
          inc(m.host / cs);
          copiedFlags.push({ cluster: m.host / cs, copied: m.copied, what: `L2 entry for guest cluster ${vc}` });
          if (m.t === 'data') report.allocatedClusters++;
        } else if (m.t === 'compressed') {
          const start = m.extent.offset - (m.extent.offset % 512);
          const last = Math.floor((start + m.extent.sectors * 512 - 1) / cs);
          for (let c = Math.floor(start / cs); c <= last; c++) inc(c);
          report.allocatedClusters++;
        }
      } catch (e) {
        if (!(e instanceof QcowError)) throw e;
        corrupt(e.message);
      }
    }
  }

  let top = Math.ceil(img.file.size / cs);
  for (const c of refs.keys()) top = Math.max(top, c + 1);
  const fixes: Array<{ cluster: number; value: number; leak: boolean }> = [];
  for (let c = 0; c < top; c++) {
    let stored: number;
    try {
      stored = await img.refs.get(c);
    } catch (e) {
      if (!(e instanceof QcowError)) throw e;
      corrupt(`cannot read the refcount of cluster ${c}: ${e.message}`);
      continue;
    }
    const want = refs.get(c) ?? 0;
    if (stored === want) continue;
    if (stored > want) {
      report.leaks++;
      report.messages.push(`Leaked cluster ${c} refcount=${stored} reference=${want}`);
      fixes.push({ cluster: c, value: want, leak: true });
    } else {
      corrupt(`cluster ${c} refcount=${stored} reference=${want}`);
      fixes.push({ cluster: c, value: want, leak: false });
    }
  }
  const repairedCounts = new Map<number, number>();
  if (opts.repair && !img.readOnly) {
    img.refs.avoid = (c) => refs.has(c);
    try {
      for (const f of fixes) {
        if (!f.leak && opts.repair !== 'all') continue;
        await img.refs.set(f.cluster, f.value);
        repairedCounts.set(f.cluster, f.value);
        if (f.leak) report.leaksFixed++;
        else report.corruptionsFixed++;
      }
      await img.file.sync();
    } finally {
      img.refs.avoid = undefined;
    }
  }
  for (const f of copiedFlags) {
    const count = repairedCounts.get(f.cluster) ?? (await img.refs.get(f.cluster).catch(() => -1));
    if ((count === 1) !== f.copied) corrupt(`OFLAG_COPIED ${f.what}: cluster ${f.cluster} refcount=${count} copied=${f.copied}`);
  }
  report.imageEndOffset = img.file.size;
  return report;
}
