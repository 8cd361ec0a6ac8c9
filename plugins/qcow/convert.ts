import { existsSync } from 'node:fs';
import { link, open as fsOpen, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { QcowError, fail } from './errors.js';
import { HostFile } from './host-file.js';
import { createQcow2 } from './create.js';
import { openQcow2, probeQcow2 } from './open.js';
import type { BackingReader, Extent } from './raw-backing.js';
import { RawBacking } from './raw-backing.js';

/**
 * What convertImage converts: source and destination paths and formats, and the qcow2 output's parameters (cluster size
 * in bytes, refcount width in bits, version); progress is reported in bytes.
 */
export interface ConvertOptions {
  src: string;
  /** Source format; probed when absent. */
  srcFormat?: 'qcow2' | 'raw';
  dst: string;
  dstFormat: 'qcow2' | 'raw';
  /** Store clusters compressed (qcow2 output only). */
  compress?: boolean;
  clusterSize?: number;
  refcountBits?: number;
  version?: 2 | 3;
  /**
   * Follow backing files named inside the source (the result is flattened). Off by default:
   * the name comes from the image, not from the user, and could be any file (/etc/shadow).
   */
  allowBacking?: boolean;
  /** Read the source even while another process writes it (qemu-img convert -U). */
  forceShare?: boolean;
  onProgress?: (done: number, total: number) => void;
}

/** What a conversion did: bytes read from the source, data ranges visited. */
export interface ConvertStats {
  bytesRead: number;
  extents: number;
}

/**
 * Copies a disk into a new file, reading only what the source has allocated (its cluster map,
 * its backing chain when allowed, SEEK_DATA on raw files) and skipping all-zero clusters, so
 * the output stays sparse and the cost follows the data, not the virtual size.
 *
 * The output is written under a temporary name in the target folder and appears under its own
 * name only once complete and synced (hard link, so an existing file is never replaced); any
 * failure removes the temporary file. Filesystem errors come back as one-line QcowErrors.
 */
export async function convertImage(o: ConvertOptions): Promise<ConvertStats> {
  if (o.compress && o.dstFormat !== 'qcow2') fail('Unsupported', 'compression needs qcow2 output');
  if (existsSync(o.dst)) fail('Io', `${o.dst} already exists; convert writes new files only`, { path: o.dst });
  const src = await openSource(o);
  const tmp = convertTempName(o.dst);
  try {
    const stats = await convertInto(src, o, tmp);
    await publish(tmp, o.dst);
    return stats;
  } catch (e) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw oneLine(e, o);
  } finally {
    await src.close();
  }
}

/** Where convertImage writes before the output gets its name: a dot file beside it, named after this process. */
export function convertTempName(dst: string): string {
  return join(dirname(dst), `.${basename(dst)}.vmm-convert-${process.pid}.tmp`);
}

async function convertInto(src: BackingReader, o: ConvertOptions, tmp: string): Promise<ConvertStats> {
  const total = src.virtualSize;
  const cs = o.dstFormat === 'qcow2' ? (o.clusterSize ?? 65536) : 65536;
  const chunk = Math.max(cs, 1 << 20);
  if (o.dstFormat === 'qcow2') {
    await createQcow2({ path: tmp, size: total, clusterSize: cs, refcountBits: o.refcountBits, version: o.version });
    const dst = await openQcow2({ path: tmp, readOnly: false });
    try {
      const stats = await copy(
        src,
        total,
        chunk,
        cs,
        async (pos, data) => {
          if (o.compress && data.length === cs) await dst.writeCompressed(pos / cs, data);
          else await dst.write(BigInt(pos), [data]);
        },
        o.onProgress,
      );
      await dst.flush();
      return stats;
    } finally {
      await dst.close();
    }
  }
  const fh = await fsOpen(tmp, 'wx');
  try {
    await fh.truncate(total);
    const stats = await copy(
      src,
      total,
      chunk,
      cs,
      async (pos, data) => {
        await fh.write(data, 0, data.length, pos);
      },
      o.onProgress,
    );
    await fh.datasync();
    return stats;
  } finally {
    await fh.close();
  }
}

/** Gives the finished file its name without replacing anything there, and makes the name durable. */
async function publish(tmp: string, dst: string): Promise<void> {
  try {
    await link(tmp, dst);
    await rm(tmp);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw e;
    // A filesystem without hard links: rename, after checking once more that the name is free.
    if (existsSync(dst)) fail('Io', `${dst} appeared while converting; the result was not kept`);
    await rename(tmp, dst);
  }
  const dir = await fsOpen(dirname(dst), 'r');
  try {
    await dir.sync();
  } catch {
    // some filesystems cannot fsync a directory; the data itself is synced
  } finally {
    await dir.close();
  }
}

/** Filesystem failures (ENOSPC, EFBIG, EIO...) as one line naming the output, not a stack. */
function oneLine(e: unknown, o: ConvertOptions): unknown {
  if (e instanceof QcowError) return e;
  const err = e as NodeJS.ErrnoException;
  if (typeof err?.code === 'string') {
    return new QcowError('Io', `cannot convert ${o.src} to ${o.dst}: ${err.message}`, { code: err.code }, { cause: e });
  }
  return e;
}

async function openSource(o: ConvertOptions): Promise<BackingReader> {
  let fmt = o.srcFormat;
  if (!fmt) {
    const f = await HostFile.open(o.src, true, 'none');
    const b = new Uint8Array(4);
    await f.read(b, 0);
    await f.close();
    fmt = probeQcow2(b) ? 'qcow2' : 'raw';
  }
  if (fmt === 'raw')
    return new RawBacking(await HostFile.open(o.src, true, o.forceShare ? 'force-share' : 'read-only'));
  try {
    return await openQcow2({
      path: o.src,
      readOnly: true,
      allowBacking: o.allowBacking ?? false,
      forceShare: o.forceShare,
    });
  } catch (e) {
    if (e instanceof QcowError && e.kind === 'Backing' && e.data.backingFile !== undefined && !o.allowBacking) {
      fail(
        'Backing',
        `${o.src} names a backing file (${JSON.stringify(e.data.backingFile)}); convert follows it only with --backing, and then copies its data into the output`,
        { backingFile: e.data.backingFile },
      );
    }
    throw e;
  }
}

/** Clusters of the output (`cs`) that the source's allocated ranges touch, merged, in order. */
async function* clustersWithData(src: BackingReader, total: number, cs: number): AsyncGenerator<Extent> {
  let run: Extent | undefined;
  for await (const [s, e] of src.allocated(0, total)) {
    const a = Math.floor(s / cs) * cs;
    const b = Math.min(total, Math.ceil(e / cs) * cs);
    if (run && a <= run[1]) run[1] = Math.max(run[1], b);
    else {
      if (run) yield run;
      run = [a, b];
    }
  }
  if (run) yield run;
}

async function copy(
  src: BackingReader,
  total: number,
  chunk: number,
  cs: number,
  put: (pos: number, data: Uint8Array) => Promise<void>,
  progress?: (done: number, total: number) => void,
): Promise<ConvertStats> {
  const stats: ConvertStats = { bytesRead: 0, extents: 0 };
  const buf = new Uint8Array(chunk);
  for await (const [start, end] of clustersWithData(src, total, cs)) {
    stats.extents++;
    for (let pos = start; pos < end; pos += chunk) {
      const n = Math.min(chunk, end - pos);
      const view = buf.subarray(0, n);
      await src.readAt(pos, view);
      stats.bytesRead += n;
      for (let c = 0; c < n; c += cs) {
        const piece = view.subarray(c, Math.min(n, c + cs));
        if (!isZero(piece)) await put(pos + c, piece.slice());
      }
      progress?.(pos + n, total);
    }
  }
  progress?.(total, total);
  return stats;
}

function isZero(b: Uint8Array): boolean {
  const words = b.length >> 3;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (let i = 0; i < words; i++) if ((dv.getUint32(i * 8) | dv.getUint32(i * 8 + 4)) !== 0) return false;
  for (let i = words * 8; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}
