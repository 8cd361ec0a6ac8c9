import { fail } from './errors.js';
import { MAX_L1_BYTES, type QcowHeader } from './header.js';
import type { HostFile } from './host-file.js';

/** qemu's limits (block/qcow2.h): extra data per snapshot, and the whole table. */
const MAX_EXTRA_DATA = 1024;
const MAX_TABLE_BYTES = 64 * 1024 * 1024;

/** One internal snapshot as far as reference counting goes: its L1 table. */
export interface SnapshotL1 {
  index: number;
  l1Offset: number;
  l1Size: number;
}

/**
 * Reads the snapshot table entry by entry (qcow2 spec, "Snapshots"): 40 fixed bytes, extra
 * data, id, name, padding to 8. Returns each snapshot's L1 table and the table's byte size.
 * Every field is checked against the file; anything malformed throws (the caller then knows
 * it could not follow the snapshots' references).
 */
export async function readSnapshotTable(
  file: HostFile,
  h: QcowHeader,
): Promise<{ bytes: number; snapshots: SnapshotL1[] }> {
  const cs = 2 ** h.clusterBits;
  const snapshots: SnapshotL1[] = [];
  let pos = h.snapshotsOffset;
  const fixed = new Uint8Array(40);
  const dv = new DataView(fixed.buffer);
  for (let i = 0; i < h.nbSnapshots; i++) {
    if (pos + 40 > file.size) fail('OffsetPastEof', `snapshot table entry ${i} runs past the end of the file`);
    await file.read(fixed, pos);
    const l1Offset = Number(dv.getBigUint64(0));
    const l1Size = dv.getUint32(8);
    const extra = dv.getUint32(36);
    if (extra > MAX_EXTRA_DATA)
      fail('BadTable', `snapshot ${i} has ${extra} bytes of extra data (limit ${MAX_EXTRA_DATA})`);
    if (l1Offset % cs !== 0) fail('BadTable', `snapshot ${i}: L1 table offset ${l1Offset} is not cluster aligned`);
    if (l1Size * 8 > MAX_L1_BYTES) fail('TooLarge', `snapshot ${i}: L1 table of ${l1Size} entries is above the limit`);
    if (l1Size > 0 && (l1Offset < cs || l1Offset + l1Size * 8 > file.size))
      fail('OffsetPastEof', `snapshot ${i}: L1 table (${l1Offset}+${l1Size * 8}) is outside the file`);
    const len = 40 + extra + dv.getUint16(12) + dv.getUint16(14);
    pos += Math.ceil(len / 8) * 8;
    if (pos - h.snapshotsOffset > MAX_TABLE_BYTES)
      fail('TooLarge', `snapshot table is larger than ${MAX_TABLE_BYTES} bytes`);
    snapshots.push({ index: i, l1Offset, l1Size });
  }
  if (pos > file.size) fail('OffsetPastEof', 'snapshot table runs past the end of the file');
  return { bytes: pos - h.snapshotsOffset, snapshots };
}

/** A persistent dirty bitmap's clusters: its table and the data clusters the table names. */
export interface BitmapClusters {
  directoryBytes: number;
  tables: Array<{ offset: number; bytes: number }>;
  data: number[];
}

/**
 * Reads the bitmap directory (qcow2 spec, "Bitmaps extension") and every bitmap table, for
 * reference counting. Throws on anything malformed.
 */
export async function readBitmaps(file: HostFile, h: QcowHeader): Promise<BitmapClusters> {
  const b = h.bitmaps!;
  const cs = 2 ** h.clusterBits;
  if (b.directoryOffset % cs !== 0 || b.directoryOffset < cs)
    fail('BadTable', 'bitmap directory offset is not a cluster-aligned offset past the header');
  if (b.directorySize > MAX_TABLE_BYTES || b.directoryOffset + b.directorySize > file.size)
    fail('BadTable', 'bitmap directory is outside the file or too large');
  const dir = new Uint8Array(b.directorySize);
  await file.read(dir, b.directoryOffset);
  const dv = new DataView(dir.buffer);
  const out: BitmapClusters = { directoryBytes: b.directorySize, tables: [], data: [] };
  let pos = 0;
  for (let i = 0; i < b.count; i++) {
    if (pos + 24 > dir.length) fail('BadTable', `bitmap directory entry ${i} runs past the directory`);
    const offset = Number(dv.getBigUint64(pos));
    const entries = dv.getUint32(pos + 8);
    if (offset % cs !== 0 || offset < cs || offset + entries * 8 > file.size)
      fail('BadTable', `bitmap ${i}: table (${offset}+${entries * 8}) is outside the file`);
    if (entries * 8 > MAX_L1_BYTES) fail('TooLarge', `bitmap ${i}: table of ${entries} entries is above the limit`);
    const table = new Uint8Array(entries * 8);
    await file.read(table, offset);
    const tv = new DataView(table.buffer);
    for (let e = 0; e < entries; e++) {
      const v = tv.getBigUint64(e * 8);
      const data = Number(v & 0x00fffffffffffe00n);
      if (v & 0xff000000000001fen) fail('BadEntry', `bitmap ${i} table entry ${e} has reserved bits set`);
      if (data === 0) continue;
      if (data % cs !== 0 || data >= file.size)
        fail('BadEntry', `bitmap ${i} table entry ${e} points outside the file`);
      out.data.push(data / cs);
    }
    out.tables.push({ offset, bytes: entries * 8 });
    const len = 24 + dv.getUint32(pos + 20) + dv.getUint16(pos + 18);
    pos += Math.ceil(len / 8) * 8;
  }
  return out;
}
