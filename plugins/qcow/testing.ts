import { spawnSync } from 'node:child_process';
import { Command } from 'commander';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Test helpers for qcow2 work, shared by this plugin's tests and others that want real images. */

/** True when qemu-img runs on this host (probed once, when the module loads). */
export const hasQemuImg = spawnSync('qemu-img', ['--version'], { timeout: 10_000 }).status === 0;
/** The skip reason for tests that need qemu-img (skipUnlessCi fails them under CI instead). */
export const QEMU_MISSING = 'qemu-img not installed (apt-get install qemu-utils)';

/** A finished qemu-img or qemu-io run: exit status (null when killed) and its output. */
export interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs qemu-img with `args` (60 s limit) and returns its status and output; never throws on a failed run. */
export function qemuImg(args: string[]): Run {
  const r = spawnSync('qemu-img', args, { timeout: 60_000, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs qemu-io commands (e.g. 'write -P 0xab 0 64k', 'write -z 1M 64k', 'discard 0 1M') on an image. */
export function qemuIo(file: string, cmds: string[], format = 'qcow2'): Run {
  const args = ['-f', format];
  for (const c of cmds) args.push('-c', c);
  args.push(file);
  const r = spawnSync('qemu-io', args, { timeout: 60_000, encoding: 'utf8' });
  if (r.status !== 0 || /error|failed/i.test(r.stdout + r.stderr))
    throw new Error(`qemu-io failed: ${r.stdout}${r.stderr}`);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** qemu-img check --output=json, parsed (exit status kept). */
export function qemuCheck(
  file: string,
  repair?: 'leaks' | 'all',
): { status: number | null; corruptions: number; leaks: number; raw: string } {
  const r = qemuImg(['check', '--output=json', ...(repair ? ['-r', repair] : []), file]);
  let j: Record<string, number> = {};
  try {
    j = JSON.parse(r.stdout) as Record<string, number>;
  } catch {
    /* keep empty: status tells */
  }
  return {
    status: r.status,
    corruptions: (j.corruptions ?? 0) + (j['check-errors'] ?? 0),
    leaks: j.leaks ?? 0,
    raw: r.stdout + r.stderr,
  };
}

/**
 * Runs `vmm image <args>` in this process through a fresh commander program and returns the exit
 * code the command set (0 when none); process.exitCode is left unset afterwards.
 */
export async function imageCli(...args: string[]): Promise<number> {
  const { registerCommands } = await import('./cli.js');
  const program = new Command().exitOverride();
  registerCommands(program);
  process.exitCode = undefined;
  await program.parseAsync(['node', 'vmm', 'image', ...args]);
  const code = Number(process.exitCode ?? 0);
  process.exitCode = undefined;
  return code;
}

/** A fresh temporary folder for a test: its path, a joiner for names in it, and cleanup (removes it all). */
export function tempDir(prefix = 'qcow-test-'): { dir: string; path: (name: string) => string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, path: (n) => join(dir, n), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A small deterministic PRNG (mulberry32) so failures replay. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A random integer in [lo, hi) from the PRNG `r`. */
export function randInt(r: () => number, lo: number, hi: number): number {
  return lo + Math.floor(r() * (hi - lo));
}

/** Fills `buf` with deterministic pseudo-random bytes, fast enough for megabytes. */
export function fillRandom(buf: Uint8Array, seed: number): Uint8Array {
  let x = (seed | 1) >>> 0;
  const words = Math.floor(buf.length / 4);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  for (let i = 0; i < words; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    dv.setUint32(i * 4, x >>> 0);
  }
  for (let i = words * 4; i < buf.length; i++) buf[i] = i & 0xff;
  return buf;
}
