/**
 * Test fixture: a process that writes to a qcow2 image forever until it is killed
 * (crash.test.ts sends SIGKILL). Every 512-byte sector it writes is stamped so that a
 * reader can tell a valid sector from a cross-wired one: magic, own sector number,
 * generation, then a fill derived from both.
 * Usage: node crash-writer.js <image> <seed>
 */
import { openQcow2 } from './open.js';

/** The first big-endian word of every stamped sector. */
export const STAMP_MAGIC = 0xc0ffee00;

/**
 * Fills the 512-byte sector at the start of `buf` with its stamp: magic, `sector`, generation `gen`, then a fill byte
 * derived from both (verifySector checks it).
 */
export function stampSector(buf: Uint8Array, sector: number, gen: number): void {
  const dv = new DataView(buf.buffer, buf.byteOffset, 512);
  buf.fill((sector * 31 + gen) & 0xff);
  dv.setUint32(0, STAMP_MAGIC);
  dv.setUint32(4, sector);
  dv.setUint32(8, gen);
}

/** '' when the sector is all zeros or a valid stamp for `sector`, else a description. */
export function verifySector(buf: Uint8Array, sector: number): string {
  if (buf.every((b) => b === 0)) return '';
  const dv = new DataView(buf.buffer, buf.byteOffset, 512);
  if (dv.getUint32(0) !== STAMP_MAGIC) return `sector ${sector}: no stamp`;
  if (dv.getUint32(4) !== sector) return `sector ${sector}: holds sector ${dv.getUint32(4)}`;
  const fill = (sector * 31 + dv.getUint32(8)) & 0xff;
  for (let i = 12; i < 512; i++) if (buf[i] !== fill) return `sector ${sector}: torn at byte ${i}`;
  return '';
}

async function main(path: string, seed: number): Promise<void> {
  const img = await openQcow2({ path, readOnly: false });
  let x = seed | 1;
  const rand = (n: number): number => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % n;
  };
  const sectors = img.virtualSize / 512;
  let gen = 1;
  for (let op = 0; ; op++) {
    if (op === 40) process.stdout.write('ready\n');
    const k = rand(100);
    const first = rand(sectors);
    const n = Math.min(sectors - first, 1 + rand(24));
    if (k < 70) {
      const buf = new Uint8Array(n * 512);
      gen++;
      for (let s = 0; s < n; s++) stampSector(buf.subarray(s * 512, s * 512 + 512), first + s, gen);
      await img.write(BigInt(first * 512), [buf]);
    } else if (k < 85) {
      await img.discard(BigInt(first * 512), BigInt(n * 512));
    } else if (k < 95) {
      await img.writeZeroes(BigInt(first * 512), BigInt(n * 512), rand(2) === 0);
    } else {
      await img.flush();
    }
  }
}

if (process.argv[1]?.endsWith('crash-writer.js') && process.argv[2]) {
  main(process.argv[2], Number(process.argv[3] ?? 1)).catch((e: unknown) => {
    process.stderr.write(`crash-writer: ${(e as Error).stack}\n`);
    process.exit(1);
  });
}
