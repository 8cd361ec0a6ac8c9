/**
 * The host's copy of the self-describing 4 KiB blocks that the guest's `guestio` writes
 * (hosts/guestkit/tools/guestio.c): "TSVMMBLK", block number, version, seed (u64 LE each),
 * then 32-bit xorshift words seeded with mix(seed, block, version).
 */
export const BLOCK_SIZE = 4096;
const MAGIC = Buffer.from('TSVMMBLK', 'latin1');
const M64 = (1n << 64n) - 1n;
const ZERO_BLOCK = Buffer.alloc(BLOCK_SIZE);

function mix(seed: bigint, block: bigint, version: bigint): number {
  let x = (seed ^ ((block * 0x9e3779b97f4a7c15n) & M64) ^ ((version * 0xc2b2ae3d27d4eb4fn) & M64)) & M64;
  x ^= x >> 33n;
  x = (x * 0xff51afd7ed558ccdn) & M64;
  x ^= x >> 33n;
  const r = Number(x & 0xffffffffn);
  return r === 0 ? 1 : r;
}

/** The bytes guestio writes as `version` of `block`. */
export function expectedBlock(seed: bigint, block: number, version: number): Buffer {
  const b = Buffer.alloc(BLOCK_SIZE);
  MAGIC.copy(b, 0);
  b.writeBigUInt64LE(BigInt(block), 8);
  b.writeBigUInt64LE(BigInt(version), 16);
  b.writeBigUInt64LE(seed, 24);
  let x = mix(seed, BigInt(block), BigInt(version));
  for (let i = 32; i < BLOCK_SIZE; i += 4) {
    x = (x ^ (x << 13)) >>> 0;
    x = (x ^ (x >>> 17)) >>> 0;
    x = (x ^ (x << 5)) >>> 0;
    b.writeUInt32LE(x, i);
  }
  return b;
}

function fnv(h: number, v: number): number {
  for (let i = 0; i < 8; i++) {
    const byte = i < 4 ? (v >>> (8 * i)) & 0xff : 0; // v < 2^32 here
    h = Math.imul(h ^ byte, 16777619) >>> 0;
  }
  return h;
}

/** What the host finds in a span of a disk written by `guestio stress`. */
export interface StressImageCheck {
  /** FNV-1a 32 over (block, version) of every written block, as guestio prints it (8 hex digits). */
  digest: string;
  /** Blocks holding a valid version. */
  blocks: number;
  /** Blocks that are neither zero nor a valid version of themselves (first few listed in `badList`). */
  bad: number;
  badList: number[];
}

/**
 * Reads every block of `image` (the first `spanBytes`): zero blocks were never written; any
 * other block must be a whole, valid version of itself (right number, seed and body).
 */
export function checkStressImage(image: Uint8Array, spanBytes: number, seed: bigint): StressImageCheck {
  let digest = 2166136261;
  let blocks = 0;
  const badList: number[] = [];
  let bad = 0;
  for (let blk = 0; blk * BLOCK_SIZE < spanBytes; blk++) {
    const b = Buffer.from(image.buffer, image.byteOffset + blk * BLOCK_SIZE, BLOCK_SIZE);
    if (b.equals(ZERO_BLOCK)) continue;
    const version = b.subarray(0, 8).equals(MAGIC) ? Number(b.readBigUInt64LE(16)) : 0;
    const ok =
      version > 0 &&
      version < 2 ** 32 &&
      b.readBigUInt64LE(8) === BigInt(blk) &&
      b.equals(expectedBlock(seed, blk, version));
    if (!ok) {
      bad++;
      if (badList.length < 8) badList.push(blk);
      continue;
    }
    blocks++;
    digest = fnv(fnv(digest, blk), version);
  }
  return { digest: digest.toString(16).padStart(8, '0'), blocks, bad, badList };
}
