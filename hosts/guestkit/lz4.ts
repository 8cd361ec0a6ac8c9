import { GuestKitError } from './errors.js';

/** Magic of the LZ4 "legacy" frame the kernel build uses (`lz4 -l`), little-endian. */
export const LZ4_LEGACY_MAGIC = 0x184c2102;
/** Each legacy chunk decompresses to at most 8 MiB. */
const LEGACY_CHUNK_MAX = 8 << 20;

/**
 * Decompresses one LZ4 block (no frame) from `src[start, end)` into `dst` at `dstPos`,
 * writing no more than `dstLimit` bytes in total. Returns the new write position.
 * Every offset and length is checked: a hostile block yields an error, never an out-of-range access.
 */
export function lz4DecompressBlock(
  src: Uint8Array,
  start: number,
  end: number,
  dst: Uint8Array,
  dstPos: number,
  dstLimit: number,
): number {
  let s = start;
  let d = dstPos;
  const fail = (why: string): never => {
    throw new GuestKitError('Decompress', `corrupt LZ4 block: ${why}`, { at: s, written: d - dstPos });
  };
  while (s < end) {
    const token = src[s++];
    // literals
    let litLen = token >>> 4;
    if (litLen === 15) {
      for (;;) {
        if (s >= end) fail('literal length runs past the block');
        const b = src[s++];
        litLen += b;
        if (b !== 255) break;
      }
    }
    if (s + litLen > end) fail('literals run past the block');
    if (d + litLen > dstLimit) fail('output larger than expected');
    dst.set(src.subarray(s, s + litLen), d);
    s += litLen;
    d += litLen;
    if (s === end) break; // the last sequence has literals only
    // match
    if (s + 2 > end) fail('match offset runs past the block');
    const offset = src[s] | (src[s + 1] << 8);
    s += 2;
    if (offset === 0 || offset > d - dstPos) fail(`match offset ${offset} points before the output`);
    let matchLen = token & 15;
    if (matchLen === 15) {
      for (;;) {
        if (s >= end) fail('match length runs past the block');
        const b = src[s++];
        matchLen += b;
        if (b !== 255) break;
      }
    }
    matchLen += 4;
    if (d + matchLen > dstLimit) fail('output larger than expected');
    let from = d - offset;
    if (offset >= matchLen) {
      dst.copyWithin(d, from, from + matchLen);
      d += matchLen;
    } else {
      // overlapping copy: byte by byte repeats the pattern
      for (let i = 0; i < matchLen; i++) dst[d++] = dst[from++];
    }
  }
  return d;
}

/**
 * Decompresses an LZ4 legacy frame: magic, then chunks of [u32 LE compressed size][block].
 * `expectedSize`, when known (the kernel appends it as a u32 after the payload), bounds the output.
 * Trailing bytes shorter than a chunk header (the kernel's size trailer) are ignored.
 */
export function lz4DecompressLegacy(src: Uint8Array, expectedSize?: number): Uint8Array {
  const dv = new DataView(src.buffer, src.byteOffset, src.byteLength);
  if (src.length < 4 || dv.getUint32(0, true) !== LZ4_LEGACY_MAGIC) {
    throw new GuestKitError('Decompress', 'not an LZ4 legacy frame (bad magic)', {});
  }
  const limit = expectedSize ?? Math.min(1 << 30, src.length * 255);
  const out = new Uint8Array(limit);
  let s = 4;
  let d = 0;
  while (s + 4 <= src.length) {
    const chunk = dv.getUint32(s, true);
    if (chunk === LZ4_LEGACY_MAGIC) {
      s += 4;
      continue;
    } // concatenated frames
    if (s + 4 + chunk > src.length) {
      // The kernel appends the uncompressed size (4 bytes) after the frame.
      if (src.length - s === 4) break;
      throw new GuestKitError(
        'Decompress',
        `LZ4 chunk of ${chunk} bytes runs past the end of the data (truncated image?)`,
        { at: s, chunk, available: src.length - s - 4 },
      );
    }
    const before = d;
    d = lz4DecompressBlock(src, s + 4, s + 4 + chunk, out, d, Math.min(limit, d + LEGACY_CHUNK_MAX));
    if (d === before && chunk > 0) throw new GuestKitError('Decompress', 'LZ4 chunk produced no output', { at: s });
    s += 4 + chunk;
  }
  if (expectedSize !== undefined && d !== expectedSize) {
    throw new GuestKitError(
      'Decompress',
      `LZ4 payload decompressed to ${d} bytes, expected ${expectedSize} (truncated image?)`,
      { got: d, expectedSize },
    );
  }
  return out.subarray(0, d);
}
