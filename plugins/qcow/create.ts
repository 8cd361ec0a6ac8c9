import { open } from 'node:fs/promises';
import { fail } from './errors.js';
import { MAX_CLUSTER_BITS, MAX_VIRTUAL_SIZE, MIN_CLUSTER_BITS, encodeHeader, l1EntriesFor } from './header.js';
import { setRefcount } from './refcount-entry.js';

/**
 * What createQcow2 writes: the path, virtual size, cluster size in bytes (default 64 KiB), refcount width, version
 * (default 3), an optional backing file (stored as given) and its format, and lazy refcounts.
 */
export interface CreateOptions {
  path: string;
  /** Virtual size in bytes (rounded up to 512). */
  size: number;
  clusterSize?: number;
  /** Refcount width in bits: 1, 2, 4, 8, 16, 32 or 64. */
  refcountBits?: number;
  version?: 2 | 3;
  backingFile?: string;
  backingFormat?: 'qcow2' | 'raw';
  lazyRefcounts?: boolean;
}

/**
 * Writes a new, empty image: header cluster, refcount table, refcount blocks that count
 * every metadata cluster, then a zeroed L1 table. Refuses to overwrite an existing file.
 */
export async function createQcow2(o: CreateOptions): Promise<void> {
  const cs = o.clusterSize ?? 65536;
  const cb = Math.log2(cs);
  if (!Number.isInteger(cb) || cb < MIN_CLUSTER_BITS || cb > MAX_CLUSTER_BITS)
    fail('BadClusterSize', `cluster size ${cs} must be a power of two from 512 to 2 MiB`);
  const bits = o.refcountBits ?? 16;
  const order = Math.log2(bits);
  if (!Number.isInteger(order) || order < 0 || order > 6)
    fail('BadRefcountOrder', `refcount width ${bits} must be a power of two from 1 to 64`);
  const version = o.version ?? 3;
  if (version === 2 && order !== 4) fail('Unsupported', 'version 2 images (compat 0.10) have 16-bit refcounts only');
  if (!Number.isSafeInteger(o.size) || o.size < 0 || o.size > MAX_VIRTUAL_SIZE)
    fail('TooLarge', `size ${o.size} must be between 0 and ${MAX_VIRTUAL_SIZE}`);
  const size = Math.ceil(o.size / 512) * 512;
  const l1Size = l1EntriesFor(size, cb);
  const l1Clusters = Math.max(1, Math.ceil((l1Size * 8) / cs));
  const perBlock = (cs * 8) / bits;
  let rtClusters = 1;
  let blocks = 1;
  for (;;) {
    const used = 1 + rtClusters + blocks + l1Clusters;
    const needBlocks = Math.ceil(used / perBlock);
    const needRt = Math.ceil((needBlocks * 8) / cs);
    if (needBlocks <= blocks && needRt <= rtClusters) break;
    blocks = Math.max(blocks, needBlocks);
    rtClusters = Math.max(rtClusters, needRt);
  }
  const rtOffset = cs;
  const blocksAt = 1 + rtClusters;
  const l1At = blocksAt + blocks;
  const total = l1At + l1Clusters;
  const hdr = encodeHeader({
    version,
    clusterBits: cb,
    size,
    l1Size,
    l1TableOffset: l1At * cs,
    refcountTableOffset: rtOffset,
    refcountTableClusters: rtClusters,
    refcountOrder: order,
    lazyRefcounts: o.lazyRefcounts,
    backingFile: o.backingFile,
    backingFormat: o.backingFile !== undefined ? (o.backingFormat ?? 'qcow2') : undefined,
  });
  const rt = new Uint8Array(rtClusters * cs);
  const rtv = new DataView(rt.buffer);
  for (let b = 0; b < blocks; b++) rtv.setBigUint64(b * 8, BigInt((blocksAt + b) * cs));
  const rb = new Uint8Array(blocks * cs);
  for (let c = 0; c < total; c++) {
    const b = Math.floor(c / perBlock);
    setRefcount(rb.subarray(b * cs, (b + 1) * cs), c % perBlock, order, 1);
  }
  const fh = await open(o.path, 'wx').catch((e: Error) =>
    fail('Io', `cannot create ${o.path}: ${e.message}`, { path: o.path }, e),
  );
  try {
    await fh.write(hdr, 0, hdr.length, 0);
    await fh.write(rt, 0, rt.length, rtOffset);
    await fh.write(rb, 0, rb.length, blocksAt * cs);
    await fh.truncate(total * cs); // zeroed L1 table
    await fh.datasync();
  } finally {
    await fh.close();
  }
}
