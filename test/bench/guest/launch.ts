import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Markers } from '../../../hosts/guestkit/markers.js';

/** A VMM process under watch: console lines with their arrival time, marker times, the end. */
export interface Launched {
  child: ChildProcess;
  /** Date.now() right before spawn (pino's `time` is on the same clock). */
  spawnEpochMs: number;
  /** performance.now() right before spawn. */
  spawnAt: number;
  /** ms from spawn to the guest kit's init marker line on the console. */
  initMs?: number;
  /** `BENCH <name> <value>` lines the guest printed. */
  values: Record<string, number>;
  console: string;
  stderr: string;
  /** Resolves when the process ended (or was killed at the time limit). */
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; timedOut: boolean }>;
  /** Stops it: SIGTERM, then SIGKILL after `graceMs`. */
  kill(graceMs?: number): Promise<void>;
}

const live = new Set<ChildProcess>();
let hooked = false;

/** How launch runs a VMM: extra environment, a time limit (ms, then it is killed) and a per-line console callback. */
export interface LaunchOptions {
  env?: NodeJS.ProcessEnv;
  timeoutMs: number;
  /** Each console line (CR stripped) with the ms since spawn. */
  onLine?: (line: string, ms: number, l: Launched) => void;
}

/** Spawns a VMM whose serial console is its stdout; stdin is a pipe left open (no input). */
export function launch(argv: string[], o: LaunchOptions): Launched {
  if (!hooked) {
    hooked = true;
    process.once('exit', () => {
      for (const c of live) c.kill('SIGKILL');
    });
  }
  const spawnEpochMs = Date.now();
  const spawnAt = performance.now();
  const child = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], env: o.env ?? process.env });
  live.add(child);
  let timedOut = false;
  const l: Launched = {
    child,
    spawnEpochMs,
    spawnAt,
    values: {},
    console: '',
    stderr: '',
    done: undefined as never,
    async kill(graceMs = 3000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await l.done;
      clearTimeout(t);
    },
  };
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, o.timeoutMs);
  let partial = '';
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (s: string) => {
    const ms = performance.now() - spawnAt;
    l.console += s;
    partial += s;
    const lines = partial.split('\n');
    partial = lines.pop()!;
    for (const raw of lines) {
      const line = raw.replace(/\r$/, '');
      const t = line.trim();
      if (t === Markers.INIT_OK && l.initMs === undefined) l.initMs = ms;
      const m = /^BENCH (\S+) (-?[\d.]+)$/.exec(t);
      if (m) l.values[m[1]] = Number(m[2]);
      try {
        o.onLine?.(t, ms, l);
      } catch {
        /* a watcher must not break the run */
      }
    }
  });
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (s: string) => {
    if (l.stderr.length < 1 << 20) l.stderr += s;
  });
  l.done = new Promise((resolve) => {
    child.on('error', (e) => {
      l.stderr += `\nspawn failed: ${e.message}`;
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      live.delete(child);
      resolve({ code, signal, timedOut });
    });
  });
  return l;
}

/** What went wrong in a run, in a line: the guest tool's own errors first, then the last lines. */
export function whyFailed(l: Launched): string {
  const own = l.console
    .split('\n')
    .map((x) => x.trim())
    .filter((x) => x.startsWith('guestbench:') || x.startsWith('vmm:'));
  const hint = /virtio_mmio: unknown parameter 'device'/.test(l.console)
    ? 'the guest kernel ignored virtio_mmio.device= (built without VIRTIO_MMIO_CMDLINE_DEVICES) and nothing else (ACPI) described the device; '
    : '';
  return hint + (own.length ? own.slice(0, 2).join(' / ') + ' // ' : '') + tailOf(l, 2);
}

/** The last lines of a run, for an n/a reason. */
export function tailOf(l: Launched, n = 4): string {
  const pick = (s: string) =>
    s
      .trim()
      .split('\n')
      .slice(-n)
      .map((x) => x.trim())
      .filter(Boolean)
      .join(' / ');
  return [pick(l.stderr), pick(l.console)].filter(Boolean).join(' // ').slice(0, 400);
}

/**
 * user + system CPU ms of a live process (/proc/<pid>/stat, clock ticks of 10 ms), or of one of its threads
 * (`tid`: /proc/<pid>/task/<tid>/stat); undefined when it is gone.
 */
export function cpuMsOf(pid: number | undefined, tid?: number): number | undefined {
  try {
    const path = tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`;
    const stat = readFileSync(path, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return undefined;
  }
}

/** cpuMsOf a process and all its descendants (/proc/<pid>/task/<pid>/children; a daemon that forks, as virtiofsd). */
export function treeCpuMsOf(pid: number | undefined): number | undefined {
  const own = cpuMsOf(pid);
  if (own === undefined) return undefined;
  let children: number[] = [];
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    /* gone, or no children file */
  }
  return children.reduce((sum, c) => sum + (treeCpuMsOf(c) ?? 0), own);
}
