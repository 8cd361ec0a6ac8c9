import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import type { TierReport } from './reporter.js';
import { seccompDeathReport } from '../../core/security/seccomp-report.js';

/**
 * Runs test files one mocha process each, under a per-file deadline, so one hung file (a guest that
 * never powers off, a main thread stuck in a loop) costs its own deadline and no more: the others
 * still run and the tier still reports. On the deadline the child is asked for a Node diagnostic
 * report (SIGPWR, `--report-on-signal --report-signal=SIGPWR`: SIGUSR2 is the vCPU kick), whose
 * JavaScript stack and open handles are printed, then its whole process group is killed.
 */
export interface WatchdogOptions {
  root: string;
  /** The mocha arguments for one file, writing its JSON report to `report`. */
  mochaArgs: (file: string, report: string) => string[];
  /** Where per-file reports and diagnostic reports go. */
  workDir: string;
  fileTimeoutMs: number;
  /** Seconds to wait for the diagnostic report before the kill. */
  reportGraceMs?: number;
  write?: (s: string) => void;
  /** Extra environment for the children. */
  env?: NodeJS.ProcessEnv;
  /** The children's stdio (default 'inherit': their spec output shows live). */
  stdio?: 'inherit' | 'ignore';
  /** Called as each file starts. */
  onFileStart?: (file: string) => void;
  /** Called with the merged report so far after each file (to keep partial results on disk). */
  onFileDone?: (merged: TierReport, file: string) => void;
  /**
   * Run a file once more when the watchdog had to kill it (a hang, not a failed assertion). The hang
   * stays on record in the report's `retried` list and in the output; the second run's results are
   * the file's, and under CI=true the runner counts the hang itself as a failure (counting.ts).
   */
  retryHung?: boolean;
}

/**
 * One file's run under the watchdog: mocha's exit status (null when killed), whether the deadline killed it, and its
 * JSON report when mocha wrote one.
 */
export interface FileRun {
  file: string;
  exit: number | null;
  timedOut: boolean;
  report?: TierReport;
}

/** A mocha JSON report with no tests, to merge file reports into. */
export const emptyReport = (): TierReport => ({
  stats: { tests: 0, passes: 0, failures: 0, pending: 0, duration: 0 },
  failures: [],
  passes: [],
  pending: [],
});

/** Sets a report's counts from its lists (after entries were added or merged). */
export function recount(r: TierReport): TierReport {
  r.stats.passes = r.passes.length;
  r.stats.failures = r.failures.length;
  r.stats.pending = r.pending.length;
  r.stats.tests = r.passes.length + r.failures.length + r.pending.length;
  return r;
}

/**
 * Runs one test file in its own mocha process (its own process group) under o.fileTimeoutMs; on the deadline prints the
 * child's diagnostic report, kills the group and, with o.retryHung, runs the file once more.
 */
export async function runFileWithDeadline(file: string, index: number, o: WatchdogOptions): Promise<FileRun> {
  const write = o.write ?? ((s: string) => process.stdout.write(s));
  const report = join(o.workDir, `file-${index}.json`);
  const diagDir = join(o.workDir, `diag-${index}`);
  mkdirSync(diagDir, { recursive: true });
  rmSync(report, { force: true });
  const started = Date.now();
  const child = spawn(
    process.execPath,
    ['--report-on-signal', '--report-signal=SIGPWR', `--report-directory=${diagDir}`, ...o.mochaArgs(file, report)],
    {
      cwd: o.root,
      stdio: o.stdio ?? 'inherit',
      detached: true, // its own process group: a kill reaches QEMU, helpers and workers it started
      env: { ...process.env, ...o.env },
    },
  );
  let timedOut = false;
  const killGroup = (sig: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, sig);
    } catch {
      /* gone */
    }
  };
  const timer = setTimeout(() => {
    timedOut = true;
    write(
      `\nwatchdog: ${relative(o.root, file)} ran past ${Math.round(o.fileTimeoutMs / 1000)} s; asking it for a diagnostic report, then killing it\n`,
    );
    write(threadStates(child.pid!));
    try {
      child.kill('SIGPWR');
    } catch {
      /* gone */
    }
    const grace = setTimeout(() => {
      write(
        `watchdog: no diagnostic report within ${Math.round((o.reportGraceMs ?? 30_000) / 1000)} s: the main thread is not serving its event loop (a synchronous loop or a blocking native call)\n`,
      );
      write(threadStates(child.pid!));
      killGroup('SIGKILL');
    }, o.reportGraceMs ?? 30_000);
    grace.unref();
    child.once('exit', () => clearTimeout(grace));
    // print the report as soon as it is written
    const poll = setInterval(() => {
      const diag = readDiag(diagDir);
      if (diag !== undefined) {
        clearInterval(poll);
        write(diag);
        killGroup('SIGKILL');
      }
    }, 1000);
    poll.unref();
    child.once('exit', () => clearInterval(poll));
  }, o.fileTimeoutMs);
  let killedBy = '';
  const exit = await new Promise<number | null>((resolve) => {
    child.once('error', () => resolve(null));
    child.once('exit', (code, signal) => {
      // a vCPU thread's seccomp filter (machine.seccomp) kills mocha itself: say which call
      if (signal === 'SIGSYS') killedBy = `; ${seccompDeathReport(child.pid!)}`;
      resolve(code ?? (signal ? 128 : null));
    });
  });
  clearTimeout(timer);
  killGroup('SIGKILL'); // leftovers of a file that ended: never let them run into the next one
  let parsed: TierReport | undefined;
  try {
    if (existsSync(report)) parsed = JSON.parse(readFileSync(report, 'utf8')) as TierReport;
  } catch {
    parsed = undefined;
  }
  if (timedOut || !parsed) {
    const r = parsed ?? emptyReport();
    const why = timedOut
      ? `${basename(file)} did not finish within ${Math.round(o.fileTimeoutMs / 1000)} s (watchdog killed it after ${Math.round((Date.now() - started) / 1000)} s)`
      : `${basename(file)}: mocha ended (status ${exit}${killedBy}) without writing its report`;
    r.failures.push({ fullTitle: `[watchdog] ${relative(o.root, file)}`, file, message: why });
    parsed = recount(r);
  } else if (parsed.passes.length + parsed.failures.length + parsed.pending.length === 0) {
    parsed.failures.push({
      fullTitle: `[watchdog] ${relative(o.root, file)}`,
      file,
      message: `${basename(file)} produced no results (status ${exit})`,
    });
    recount(parsed);
  } else if (exit !== 0 && parsed.stats.failures === 0) {
    parsed.failures.push({
      fullTitle: `[watchdog] ${relative(o.root, file)}`,
      file,
      message: `mocha exited with ${exit} after its tests passed`,
    });
    recount(parsed);
  }
  return { file, exit, timedOut, report: parsed };
}

/** One line per thread of `pid`: name, state (R runs, S sleeps, D waits on I/O), CPU ticks, current syscall. */
export function threadStates(pid: number): string {
  const lines: string[] = [];
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const read = (f: string) => {
        try {
          return readFileSync(`/proc/${pid}/task/${tid}/${f}`, 'utf8').trim();
        } catch {
          return '?';
        }
      };
      const stat = read('stat');
      const close = stat.lastIndexOf(')');
      const fields = stat.slice(close + 2).split(' ');
      const ticks = Number(fields[11]) + Number(fields[12]); // utime + stime
      lines.push(
        `    ${tid} ${read('comm')} state ${fields[0]} cpu ${ticks} ticks syscall ${read('syscall').split(' ')[0]}`,
      );
    }
  } catch {
    return `watchdog: process ${pid} is gone\n`;
  }
  return `watchdog: threads of ${pid}:\n${lines.join('\n')}\n`;
}

/** The JS stack and libuv handle summary of the first diagnostic report in `dir`, or undefined. */
export function readDiag(dir: string): string | undefined {
  const f = readdirSync(dir).find((n) => n.endsWith('.json'));
  if (!f) return undefined;
  try {
    const d = JSON.parse(readFileSync(join(dir, f), 'utf8')) as {
      javascriptStack?: { message?: string; stack?: string[] };
      libuv?: { type: string; is_active?: boolean; fd?: number }[];
      workers?: unknown[];
    };
    const stack = (d.javascriptStack?.stack ?? [])
      .slice(0, 25)
      .map((l) => `    ${l}`)
      .join('\n');
    const handles = new Map<string, number>();
    for (const h of d.libuv ?? []) if (h.is_active) handles.set(h.type, (handles.get(h.type) ?? 0) + 1);
    return (
      `watchdog: main-thread JavaScript stack (${d.javascriptStack?.message ?? '?'}):\n${stack || '    (empty: idle in the event loop)'}\n` +
      `watchdog: active libuv handles: ${[...handles].map(([t, n]) => `${t}×${n}`).join(', ') || 'none'}; workers: ${d.workers?.length ?? 0}\n`
    );
  } catch {
    return undefined; // still being written
  }
}

/** Runs each file under its deadline and merges the reports. */
export async function runFilesWithWatchdog(files: string[], o: WatchdogOptions): Promise<TierReport> {
  mkdirSync(o.workDir, { recursive: true });
  const merged = emptyReport();
  let runs = 0;
  for (const file of files) {
    o.onFileStart?.(file);
    let r = await runFileWithDeadline(file, runs++, o);
    if (r.timedOut && o.retryHung) {
      const why = r.report!.failures.find((f) => f.fullTitle.startsWith('[watchdog]'))?.message ?? 'hung';
      (merged.retried ??= []).push({ file, reason: why });
      (o.write ?? ((s: string) => process.stdout.write(s)))(
        `watchdog: running ${relative(o.root, file)} once more after the hang (the hang stays on record)\n`,
      );
      r = await runFileWithDeadline(file, runs++, o);
    }
    const rep = r.report!;
    merged.passes.push(...rep.passes);
    merged.failures.push(...rep.failures);
    merged.pending.push(...rep.pending);
    merged.stats.duration += rep.stats.duration;
    recount(merged);
    o.onFileDone?.(merged, file);
  }
  return merged;
}
