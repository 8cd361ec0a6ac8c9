import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { apiRequest, type ApiAnswer } from '../../hosts/api/client.js';
import { compiledDir, repoRoot } from '../guest/guest-vm.js';
import { checkResponse, loadSpec } from './openapi.js';

/**
 * Re-reads `file` from byte `from` until `pattern` matches (or `ms` pass); resolves with the last match. Polls: the
 * guest writes it. On time-out the error carries the file's tail (the evidence).
 */
export async function waitForText(file: string, pattern: RegExp, ms: number, from = 0): Promise<RegExpMatchArray> {
  const until = Date.now() + ms;
  for (;;) {
    const all = fs.existsSync(file) ? fs.readFileSync(file, 'latin1') : '';
    const text = all.length >= from ? all.slice(from) : all;
    const m = [...text.matchAll(new RegExp(pattern.source, 'g'))].at(-1);
    if (m) return m;
    if (Date.now() > until) throw new Error(`no ${pattern} within ${ms} ms; console tail:\n${text.slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** A `vmm serve` child process and a spec-checked client for its socket. */
export interface ServeProcess {
  readonly child: ChildProcess;
  readonly socket: string;
  /** Milliseconds from the spawn to the first vmm.ping answered 200. */
  readonly pingMs: number;
  /** What it wrote to stderr so far. */
  stderr(): string;
  /** Resolves with its exit code. */
  readonly exited: Promise<number | null>;
  /** One request; the answer must conform to the spec (or be CH's error shape). */
  call(method: 'GET' | 'PUT', name: string, body?: unknown): Promise<ApiAnswer>;
  /** Kills it if it still runs, and stops its deadline. */
  stop(): void;
}

/**
 * Spawns `vmm serve --api-socket <dir>/api.sock <args>` in `dir` as users start it (bin/vmm.js) and waits until it
 * answers vmm.ping (at most `upMs`, else the error names its stderr). It is killed after `killAfterMs` whatever
 * happens, so a hung test cannot hold the sandbox.
 */
export async function startServe(
  dir: string,
  args: string[],
  opts: { upMs: number; killAfterMs: number },
): Promise<ServeProcess> {
  const root = repoRoot();
  const socket = path.join(dir, 'api.sock');
  const spec = loadSpec();
  const t0 = Date.now();
  const child = spawn(process.execPath, [path.join(root, 'bin', 'vmm.js'), 'serve', '--api-socket', socket, ...args], {
    cwd: dir,
    env: { ...process.env, VMM_DIST: path.relative(root, compiledDir()) || 'dist' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  const deadline = setTimeout(() => child.kill('SIGKILL'), opts.killAfterMs);
  const stop = (): void => {
    clearTimeout(deadline);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`vmm serve exited (${child.exitCode}): ${stderr}`);
      if (Date.now() - t0 > opts.upMs)
        throw new Error(`vmm serve did not answer vmm.ping in ${opts.upMs} ms: ${stderr}`);
      const up = await apiRequest(socket, 'GET', 'vmm.ping').catch(() => undefined);
      if (up?.status === 200) break;
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (err) {
    stop();
    throw err;
  }
  return {
    child,
    socket,
    pingMs: Date.now() - t0,
    stderr: () => stderr,
    exited,
    stop,
    async call(method, name, body) {
      const a = await apiRequest(socket, method, name, body, 90_000).catch((err: Error) => {
        throw new Error(`${method} ${name}: ${err.message}; vmm serve's stderr:\n${stderr.slice(-3000)}`);
      });
      expect(checkResponse(spec, name, method, a.status, a.body), `${name} ${a.status}`).to.deep.equal([]);
      return a;
    },
  };
}

/** The event names of an event-monitor file (JSON lines). */
export const eventNames = (file: string): string[] =>
  fs
    .readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((l) => (JSON.parse(l) as { event: string }).event);
