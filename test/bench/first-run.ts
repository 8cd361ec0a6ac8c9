/**
 * `node dist/test/bench/first-run.js [-n 5] --cmd '<A>' [--cmd '<B>' ...]`
 * Times a VMM's start-up on this host, as a whole process: from spawn to the first vCPU entering KVM_RUN (the line
 * core/vmm/timings.ts markFirstRun prints with VMM_TIMINGS=1, whose wall clock is compared with the spawn time
 * taken here), plus the VMM's own start-up marks. The guest need not boot (PVM hosts: `vmm run --force`): the VMM
 * is stopped once its vCPU runs. Commands take turns (A B A B ...) so drift on a shared machine hits each alike;
 * each command is one string split on spaces, with leading NAME=value words as its environment, e.g.
 * `--cmd 'VMM_BUNDLE=0 node bin/vmm.js run --force hosts/micro.yaml'`.
 */
import { spawn } from 'node:child_process';
import { Command } from 'commander';
import { cpuMsOf } from './guest/launch.js';
import { fmt, summarize } from './stats.js';

/** What one start-up printed: spawn to first KVM_RUN (ms), and each start-up mark (ms since process start). */
export interface FirstRun {
  /** ms from spawn to the first KVM_RUN (undefined: the line never came). */
  firstRunMs?: number;
  /** ms from spawn to Node's process start (performance.timeOrigin). */
  execMs?: number;
  /** Start-up marks by step, ms since process start. */
  marks: Record<string, number>;
  /** CPU time (user + system, ms) the process had used when the line came: steadier than wall time on a busy host. */
  cpuMs?: number;
}

const FIRST_RUN = /^vmm: first KVM_RUN \(vCPU (\d+)\): ([\d.]+) ms since process start, epoch ([\d.]+)/;
const MARK = /^\s*([\d.]+) ms\s+\+\s*[\d.]+\s+(.+)$/;

/** Reads a VMM's stderr (VMM_TIMINGS=1) against the epoch ms it was spawned at. */
export function parseFirstRun(stderr: string, spawnEpochMs: number): FirstRun {
  const out: FirstRun = { marks: {} };
  for (const line of stderr.split('\n')) {
    const f = FIRST_RUN.exec(line);
    if (f && out.firstRunMs === undefined) {
      const sinceStart = Number(f[2]);
      const epoch = Number(f[3]);
      out.firstRunMs = epoch - spawnEpochMs;
      out.execMs = epoch - sinceStart - spawnEpochMs;
      out.marks[`first KVM_RUN`] = sinceStart;
      continue;
    }
    const m = MARK.exec(line);
    if (m && !(m[2] in out.marks)) out.marks[m[2].replace(/\s*\(.*\)$/, '')] = Number(m[1]);
  }
  return out;
}

/** The start-up steps a summary names, in order (core/vmm/timings.ts marks). */
export const STEPS = [
  'config loaded',
  'plugins discovered',
  'machine built',
  'kernel read',
  'kernel opened',
  'kernel copied',
  'initramfs copied',
  'kernel loaded',
  'started',
  'first KVM_RUN',
];

/**
 * One line of where a VMM's start-up went (its stderr with VMM_TIMINGS=1, spawned at `spawnEpochMs`): spawn to Node's
 * process start, then each step's ms since process start; undefined when it printed no marks.
 */
export function startupSummary(stderr: string, spawnEpochMs: number): string | undefined {
  const r = parseFirstRun(stderr, spawnEpochMs);
  const steps = STEPS.filter((s) => r.marks[s] !== undefined).map((s) => `${s} ${Math.round(r.marks[s])}`);
  if (steps.length === 0) return undefined;
  const exec = r.execMs === undefined ? '' : `spawn to process start ${Math.round(r.execMs)} ms; `;
  return `${exec}ms since process start: ${steps.join(', ')}`;
}

/** Splits `NAME=v NAME2=w prog args...` into its environment additions and argv. */
export function splitCommand(cmd: string): { env: Record<string, string>; argv: string[] } {
  const words = cmd.split(/\s+/).filter(Boolean);
  const env: Record<string, string> = {};
  while (words.length && /^[A-Za-z_][A-Za-z0-9_]*=/.test(words[0])) {
    const w = words.shift()!;
    const eq = w.indexOf('=');
    env[w.slice(0, eq)] = w.slice(eq + 1);
  }
  return { env, argv: words };
}

/** Runs one command until its first KVM_RUN line (or `timeoutMs`), stops it and returns what it printed. */
async function once(cmd: string, timeoutMs: number): Promise<FirstRun & { stderr: string }> {
  const { env, argv } = splitCommand(cmd);
  const spawnEpochMs = performance.timeOrigin + performance.now();
  const child = spawn(argv[0], argv.slice(1), {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, VMM_TIMINGS: '1', ...env },
  });
  let stderr = '';
  let cpuMs: number | undefined;
  const ended = new Promise<void>((res) => child.once('exit', () => res()));
  await new Promise<void>((res) => {
    const t = setTimeout(res, timeoutMs);
    child.stderr.on('data', (b: Buffer) => {
      stderr += b.toString();
      if (/^vmm: first KVM_RUN .*\n/m.test(stderr)) {
        cpuMs = cpuMsOf(child.pid);
        clearTimeout(t);
        res();
      }
    });
    void ended.then(() => {
      clearTimeout(t);
      res();
    });
  });
  child.kill('SIGTERM');
  const hard = setTimeout(() => child.kill('SIGKILL'), 5000);
  await ended;
  clearTimeout(hard);
  return { ...parseFirstRun(stderr, spawnEpochMs), cpuMs, stderr };
}

async function main(): Promise<void> {
  const p = new Command('first-run')
    .option('-n, --runs <n>', 'counted runs per command', (v) => Number(v), 5)
    .option('--warmup <n>', 'uncounted runs per command first', (v) => Number(v), 1)
    .option('--cmd <command>', 'a command to time (repeatable)', (v, prev: string[]) => [...prev, v], [] as string[])
    .option('--timeout <ms>', 'per run', (v) => Number(v), 60_000);
  p.parse(process.argv);
  const o = p.opts<{ runs: number; warmup: number; cmd: string[]; timeout: number }>();
  if (o.cmd.length === 0) throw new Error('give at least one --cmd');
  const res: FirstRun[][] = o.cmd.map(() => []);
  for (let i = 0; i < o.warmup + o.runs; i++) {
    for (const [k, cmd] of o.cmd.entries()) {
      const r = await once(cmd, o.timeout);
      if (r.firstRunMs === undefined)
        process.stderr.write(`no first KVM_RUN line from ${cmd}:\n${r.stderr.slice(-2000)}\n`);
      if (i >= o.warmup) res[k].push(r);
      process.stderr.write(`run ${i + 1} cmd ${String.fromCharCode(65 + k)}: ${fmt(r.firstRunMs)} ms\n`);
    }
  }
  for (const [k, cmd] of o.cmd.entries()) {
    const s = summarize(res[k].map((r) => r.firstRunMs ?? NaN));
    console.log(`${String.fromCharCode(65 + k)}: ${cmd}`);
    console.log(`  spawn to first KVM_RUN: median ${fmt(s?.median)} ms (min ${fmt(s?.min)}, max ${fmt(s?.max)})`);
    const cpu = summarize(res[k].map((r) => r.cpuMs ?? NaN));
    console.log(`  CPU (user+sys) by then: median ${fmt(cpu?.median)} ms (min ${fmt(cpu?.min)}, max ${fmt(cpu?.max)})`);
    const ex = summarize(res[k].map((r) => r.execMs ?? NaN));
    console.log(`  spawn to Node's process start: median ${fmt(ex?.median)} ms`);
    for (const step of STEPS) {
      const m = summarize(res[k].map((r) => r.marks[step] ?? NaN));
      if (m) console.log(`  ${step}: median ${fmt(m.median)} ms since process start`);
    }
    if (k > 0) {
      const ratios = res[k].map((r, i) => (r.firstRunMs ?? NaN) / (res[0][i]?.firstRunMs ?? NaN));
      const q = summarize(ratios);
      console.log(
        `  ratio ${String.fromCharCode(65 + k)}/A per pair: median ${fmt(q?.median)} (${fmt(q?.min)}-${fmt(q?.max)})`,
      );
      const c = summarize(res[k].map((r, i) => (r.cpuMs ?? NaN) / (res[0][i]?.cpuMs ?? NaN)));
      console.log(
        `  CPU ratio ${String.fromCharCode(65 + k)}/A per pair: median ${fmt(c?.median)} (${fmt(c?.min)}-${fmt(c?.max)})`,
      );
    }
  }
}

if (process.argv[1]?.endsWith('first-run.js')) await main();
