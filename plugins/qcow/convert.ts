import { open as fsOpen } from 'node:fs/promises';
import { fail } from './errors.js';
import { HostFile } from './host-file.js';
import { createQcow2 } from './create.js';
import { openQcow2, probeQcow2 } from './open.js';
import type { BackingReader } from './raw-backing.js';
import { RawBacking } from './raw-backing.js';

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
  /** Follow backing files of the source (the result is flattened). Default true: the user named the file. */
  allowBacking?: boolean;
  onProgress?: (done: number, total: number) => void;
}

/** Copies a disk into a new file, skipping all-zero clusters (the output stays sparse). */
export async function convertImage(o: ConvertOptions): Promise<void> {
  if (o.compress && o.dstFormat !== 'qcow2') fail('unsupported', 'compression needs qcow2 output');
  const src = await openSource(o);
  try {
    const total = src.virtualSize;
    const cs = o.dstFormat === 'qcow2' ? (o.clusterSize ?? 65536) : 65536;
    const chunk = Math.max(cs, 1 << 20);
    if (o.dstFormat === 'qcow2') {
      await createQcow2({ path: o.dst, size: total, clusterSize: cs, refcountBits: o.refcountBits, version: o.version });
      const dst = await openQcow2({ path: o.dst, readOnly: false });
      try {
        await copy(src, total, chunk, cs, async (pos, data) => {
          if (o.compress && data.length === cs) await dst.writeCompressed(pos / cs, data);
          else await dst.write(BigInt(pos), [data]);
        }, o.onProgress);
        await dst.flush();
      } finally {
        await dst.close();
      }
    } else {
      const fh = await fsOpen(o.dst, 'wx').catch((e: Error) => fail('io', `cannot create ${o.dst}: ${e.message}`, { path: o.dst }, e));
      try {
        await fh.truncate(total);
        await copy(src, total, chunk, cs, async (pos, data) => {
          await fh.write(data, 0, data.length, pos);
        }, o.onProgress);
        await fh.datasync();
      } finally {
        await fh.close();
      }
    }
  } finally {
    await src.close();
  }
}

async function openSource(o: ConvertOptions): Promise<BackingReader> {
  let fmt = o.srcFormat;
  if (!fmt) {
    const f = await HostFile.open(o.src, true);
    const b = new Uint8Array(4);
    await f.read(b, 0);
    await f.close();
    fmt = probeQcow2(b) ? 'qcow2' : 'raw';
  }
  if (fmt === 'qcow2') return openQcow2({ path: o.src, readOnly: true, allowBacking: o.allowBacking ?? true });
  return new RawBacking(await HostFile.open(o.src, true));
}

async function copy(
  src: BackingReader, total: number, chunk: number, cs: number,
  put: (pos: number, data: Uint8Array) => Promise<void>, progress?: (done: number, total: number) => void,
): Promise<void> {
  const buf = new Uint8Array(chunk);
  for (let pos = 0; pos < total; pos += chunk) {
    const n = Math.min(chunk, total - pos);
    const view = buf.subarray(0, n);
    await src.readAt(pos, view);
    for (let c = 0; c < n; c += cs) {
      const piece = view.subarray(c, Math.min(n, c + cs));
      if (!isZero(piece)) await put(pos + c, piece.slice());
    }
    progress?.(pos + n, total);
  }
}

function isZero(b: Uint8Array): boolean {
  const words = b.length >> 3;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (let i = 0; i < words; i++) if ((dv.getUint32(i * 8) | dv.getUint32(i * 8 + 4)) !== 0) return false;
  for (let i = words * 8; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}
