import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { projectLayout } from '../../hosts/sandbox/sandbox.js';

/** The C programs the benchmarks compile at bench time (sources under test/bench/). */
export const C_TOOLS = {
  /** The exit round-trip peer: a KVM_RUN loop against <linux/kvm.h>. */
  'kvm-exit-loop': 'test/bench/exit/kvm-exit-loop.c',
  /** Runs inside the guests: O_DIRECT block I/O and a TCP sender (static: the guest has no libc). */
  guestbench: 'test/bench/guest/guestbench.c',
} as const;
/** The name of one bench-time C program (a key of C_TOOLS). */
export type CTool = keyof typeof C_TOOLS;

/** Where compiled tools live: inside the build folder, so the sandbox carries them into L1. */
export function toolDir(): string {
  return join(projectLayout().compiled, 'test', 'bench', 'bin');
}

/**
 * The path of a compiled tool, compiling it with `gcc -O2 -static` when missing or older than
 * its source. Throws a one-line reason when there is neither a binary nor a compiler.
 */
export function tool(name: CTool): string {
  const { root } = projectLayout();
  const src = join(root, C_TOOLS[name]);
  const out = join(toolDir(), name);
  const fresh = existsSync(out) && (!existsSync(src) || statSync(out).mtimeMs >= statSync(src).mtimeMs);
  if (fresh) return out;
  mkdirSync(toolDir(), { recursive: true });
  const r = spawnSync('gcc', ['-O2', '-static', '-Wall', '-o', out, src], { encoding: 'utf8', timeout: 120_000 });
  if (r.error) throw new Error(`cannot compile ${name}: gcc not found (${r.error.message})`);
  if (r.status !== 0) throw new Error(`cannot compile ${name}: ${r.stderr.trim().split('\n').slice(-3).join(' / ')}`);
  return out;
}

/** gcc --version's first line, recorded with the figures. */
export function gccVersion(): string | undefined {
  const r = spawnSync('gcc', ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.split('\n')[0] : undefined;
}
