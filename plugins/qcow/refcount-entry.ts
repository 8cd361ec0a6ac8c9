/**
 * Refcount block entries are 2^order bits wide. Orders 0..2 pack several entries in a
 * byte, lowest bits first; orders 3..6 are big-endian integers. Values are numbers:
 * 64-bit refcounts above 2^53 read as Infinity (never a valid count for us).
 */
export function refcountMax(order: number): number {
  return order >= 6 ? Number.MAX_SAFE_INTEGER : 2 ** (2 ** order) - 1;
}

/** Entry `i` of a refcount block whose entries are 2^order bits wide (see above). */
export function getRefcount(block: Uint8Array, i: number, order: number): number {
  switch (order) {
    case 0:
      return (block[i >> 3]! >> (i & 7)) & 1;
    case 1:
      return (block[i >> 2]! >> ((i & 3) * 2)) & 3;
    case 2:
      return (block[i >> 1]! >> ((i & 1) * 4)) & 15;
    case 3:
      return block[i]!;
    case 4:
      return (block[i * 2]! << 8) | block[i * 2 + 1]!;
    case 5: {
      const p = i * 4;
      return ((block[p]! << 24) >>> 0) + (block[p + 1]! << 16) + (block[p + 2]! << 8) + block[p + 3]!;
    }
    default: {
      const dv = new DataView(block.buffer, block.byteOffset + i * 8, 8);
      const hi = dv.getUint32(0);
      if (hi >= 0x200000) return Infinity;
      return hi * 2 ** 32 + dv.getUint32(4);
    }
  }
}

/** Stores `v` and returns the byte range [start, end) that changed, for a partial write. */
export function setRefcount(block: Uint8Array, i: number, order: number, v: number): [number, number] {
  switch (order) {
    case 0:
    case 1:
    case 2: {
      const bits = 2 ** order;
      const perByte = 8 / bits;
      const byte = Math.floor(i / perByte);
      const shift = (i % perByte) * bits;
      const mask = ((1 << bits) - 1) << shift;
      block[byte] = (block[byte]! & ~mask) | ((v << shift) & mask);
      return [byte, byte + 1];
    }
    case 3:
      block[i] = v;
      return [i, i + 1];
    case 4:
      block[i * 2] = v >>> 8;
      block[i * 2 + 1] = v & 0xff;
      return [i * 2, i * 2 + 2];
    case 5: {
      new DataView(block.buffer, block.byteOffset + i * 4, 4).setUint32(0, v);
      return [i * 4, i * 4 + 4];
    }
    default: {
      const dv = new DataView(block.buffer, block.byteOffset + i * 8, 8);
      dv.setUint32(0, Math.floor(v / 2 ** 32));
      dv.setUint32(4, v >>> 0);
      return [i * 8, i * 8 + 8];
    }
  }
}
