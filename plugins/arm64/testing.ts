/** Test helpers of the arm64 plugin: a fake kernel Image with a valid header, dtc as the device tree judge. */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { skipUnlessCi } from '../../test/setup/environment.js';
import { ARM64_IMAGE_MAGIC } from './boot/image.js';

/** Options of fakeArm64Image: header fields and the file's length. */
export interface FakeImageOptions {
  length?: number;
  textOffset?: bigint;
  imageSize?: bigint;
  flags?: bigint;
  magic?: number;
}

/** An arm64 Image of `length` bytes (default 64 KiB) with a header that passes parseArm64Image. */
export function fakeArm64Image(o: FakeImageOptions = {}): Uint8Array {
  const length = o.length ?? 0x10000;
  const img = new Uint8Array(length);
  const v = new DataView(img.buffer);
  v.setUint32(0, 0x91005a4d, true); // code0: "MZ" + add x13, x18, #0x16 (the EFI stub's first instruction)
  v.setBigUint64(8, o.textOffset ?? 0n, true);
  v.setBigUint64(16, o.imageSize ?? BigInt(length) * 2n, true);
  v.setBigUint64(24, o.flags ?? 0b1010n, true); // 4K pages, placement anywhere
  v.setUint32(56, o.magic ?? ARM64_IMAGE_MAGIC, true);
  for (let i = 64; i < length; i++) img[i] = i & 0xff;
  return img;
}

/** Decompiles a blob with dtc (the reference implementation): its dts text and warnings. */
export function dtcDecompile(blob: Uint8Array): { dts: string; stderr: string; status: number | null } {
  const dir = mkdtempSync(join(tmpdir(), 'fdt-'));
  try {
    writeFileSync(join(dir, 'a.dtb'), blob);
    const r = spawnSync('dtc', ['-I', 'dtb', '-O', 'dts', join(dir, 'a.dtb')], { encoding: 'utf8', timeout: 20_000 });
    return { dts: r.stdout, stderr: r.stderr, status: r.status };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Skips (outside CI) when dtc is missing. */
export function needDtc(ctx: Mocha.Context): void {
  try {
    execFileSync('dtc', ['--version'], { stdio: 'ignore' });
  } catch {
    skipUnlessCi(ctx, 'dtc is not installed (Debian device-tree-compiler)');
  }
}
