import * as zlib from 'node:zlib';
import { fail } from './errors.js';

/** Where a compressed cluster's bytes live: `offset` in the file, `sectors` 512-byte sectors touched. */
export interface CompressedExtent {
  offset: number;
  sectors: number;
  /** Bytes from `offset` that may hold the stream (to the end of the last sector). */
  length: number;
}

/** Splits a compressed L2 entry (bits 0..61) per the spec: x = 62 - (cluster_bits - 8). */
export function decodeCompressed(entry: bigint, clusterBits: number): CompressedExtent {
  const x = BigInt(62 - (clusterBits - 8));
  const offset = Number(entry & ((1n << x) - 1n));
  const sectors = Number((entry >> x) & ((1n << BigInt(clusterBits - 8)) - 1n)) + 1;
  return { offset, sectors, length: sectors * 512 - (offset % 512) };
}

/**
 * The compressed L2 entry for `length` compressed bytes at host byte `offset` (decodeCompressed's inverse; the sector
 * count covers every 512-byte sector the bytes touch).
 */
export function encodeCompressed(offset: number, length: number, clusterBits: number): bigint {
  const x = BigInt(62 - (clusterBits - 8));
  const sectors = Math.floor((offset + length - 1) / 512) - Math.floor(offset / 512) + 1;
  return (1n << 62n) | (BigInt(sectors - 1) << x) | BigInt(offset);
}

type ZstdSync = (buf: Uint8Array, opts: { maxOutputLength: number }) => Buffer;

/**
 * Inflates one cluster. The output is capped at the cluster size (a stream that would
 * produce more is a decompression bomb and is refused) and must fill the cluster exactly.
 */
export function decompressCluster(data: Uint8Array, clusterSize: number, type: number): Uint8Array {
  let out: Buffer;
  try {
    if (type === 0) {
      out = zlib.inflateRawSync(data, { maxOutputLength: clusterSize, finishFlush: zlib.constants.Z_SYNC_FLUSH });
    } else {
      const zstd = (zlib as unknown as { zstdDecompressSync?: ZstdSync }).zstdDecompressSync;
      if (!zstd)
        fail(
          'Unsupported',
          'zstd-compressed clusters need Node.js with zlib zstd support (Node 22.15+); convert the image with `qemu-img convert -O qcow2` to read it here',
        );
      out = zstd(data, { maxOutputLength: clusterSize });
    }
  } catch (e) {
    if (e instanceof Error && e.name === 'QcowError') throw e;
    fail(
      'Decompression',
      `compressed cluster does not decompress within ${clusterSize} bytes: ${(e as Error).message}`,
      {},
      e,
    );
  }
  if (out.length !== clusterSize)
    fail('Decompression', `compressed cluster inflates to ${out.length} bytes, expected ${clusterSize}`);
  return out;
}

/** Deflates one cluster the way QEMU reads it back (raw deflate, 4 KiB window). */
export function compressCluster(data: Uint8Array): Uint8Array {
  return zlib.deflateRawSync(data, { windowBits: 12, level: 6 });
}
