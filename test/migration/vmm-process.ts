import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { compiledDir, repoRoot } from '../guest/guest-vm.js';

/** A `bin/vmm.js` child process and what it printed so far. */
export interface VmmChild {
  child: ChildProcess;
  stdout: () => Buffer;
  stderr: () => string;
  /** Resolves with the exit code (null when a signal ended it). */
  ended: Promise<number | null>;
  /** The last 2000 characters of stderr and stdout, for assertion messages. */
  tail: () => string;
}

/** Runs `bin/vmm.js <args>` of the compiled tree this test runs from, with stdin as a pipe. */
export function vmm(args: string[], cwd: string): VmmChild {
  const root = repoRoot();
  const child = spawn(process.execPath, [path.join(root, 'bin', 'vmm.js'), ...args], {
    cwd,
    env: { ...process.env, VMM_DIST: path.relative(root, compiledDir()) || 'dist' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const out: Buffer[] = [];
  let err = '';
  child.stdout!.on('data', (d: Buffer) => out.push(d));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  child.stdin!.on('error', () => {});
  const ended = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  const stdout = (): Buffer => Buffer.concat(out);
  return {
    child,
    stdout,
    stderr: () => err,
    ended,
    tail: () => `stderr: ${err.slice(-2000)}\nstdout: ${stdout().toString('latin1').slice(-2000)}`,
  };
}

/** The first JSON log record (pino) on `stderr` whose msg is `msg`, for the timings a test prints. */
export function logRecord(stderr: string, msg: string): Record<string, unknown> | undefined {
  for (const line of stderr.split('\n')) {
    if (!line.includes(msg)) continue;
    try {
      const j = JSON.parse(line) as Record<string, unknown>;
      if (j.msg === msg) return j;
    } catch {
      /* not JSON */
    }
  }
  return undefined;
}
