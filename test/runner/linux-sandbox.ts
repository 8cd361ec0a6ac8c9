import { join, relative, resolve } from 'node:path';
import { readFileSync } from 'node:fs';
import { runInSandbox, type SandboxOptions, type SandboxResult } from '../../hosts/sandbox/sandbox.js';
import type { SandboxVariant } from '../../hosts/sandbox/variant.js';
import type { TierReport } from './reporter.js';
import { failFilesWithoutResults } from './counting.js';
import { emptyReport, recount } from './watchdog.js';

/** Console markers linux-inner prints around each file (the host learns which files ended in a boot). */
export const FILE_START = 'TSVMM-LINUX-FILE-START';
/** Printed by linux-inner after a file's results are written (see FILE_START). */
export const FILE_END = 'TSVMM-LINUX-FILE-END';
/** A line linux-inner prints every HEARTBEAT_MS so the host can tell a quiet L1 from a frozen one. */
export const HEARTBEAT = 'TSVMM-ALIVE';
/** How often linux-inner prints HEARTBEAT, in milliseconds. */
export const HEARTBEAT_MS = 30_000;

/**
 * Passes console output on without the heartbeat lines (a marker split across chunks is held
 * back until the next chunk shows whether it is one).
 */
export class HeartbeatFilter {
  private held = '';
  constructor(private readonly write: (s: string) => void) {}
  push(chunk: string): void {
    let s = (this.held + chunk).replace(/(^|\n)TSVMM-ALIVE\r?\n/g, '$1');
    this.held = '';
    const nl = s.lastIndexOf('\n');
    const tail = s.slice(nl + 1);
    if (tail.length > 0 && `${HEARTBEAT}\r`.startsWith(tail)) {
      this.held = tail; // could still become a heartbeat line
      s = s.slice(0, nl + 1);
    }
    if (s) this.write(s);
  }
}

/**
 * How the host runs the linux tier in the sandbox: project and build folders, a scratch folder, the per-file and
 * whole-tier limits, how many L1 boots it may take, and fakes for tests.
 */
export interface LinuxSandboxOptions {
  root: string;
  compiled: string;
  tmp: string;
  /** Per-file deadline inside L1 (the watchdog's). */
  fileTimeoutS: number;
  /** The whole tier, all boots together. */
  limitMs: number;
  /** At most this many L1 boots (a frozen or crashed L1 is booted again for the files it did not end). */
  maxBoots?: number;
  /** Console silence (no heartbeat either) after which L1 counts as frozen; default 5 min. */
  silenceMs?: number;
  /** Another L1 machine (SandboxOptions.variant). */
  variant?: SandboxVariant;
  write?: (s: string) => void;
  /** The sandbox runner (a test passes a fake). */
  run?: (
    command: string,
    o: SandboxOptions,
  ) => Promise<Pick<SandboxResult, 'console' | 'exitCode' | 'report'> & Partial<Pick<SandboxResult, 'status'>>>;
}

/** The files (relative to root) whose end marker is on the console. */
export function endedFiles(consoleText: string): Set<string> {
  const out = new Set<string>();
  for (const m of consoleText.matchAll(new RegExp(`^${FILE_END} (\\S+)\\r?$`, 'gm'))) out.add(m[1]!);
  return out;
}

/**
 * True when L1's own kernel crashed while `file` ran: QEMU exited by itself (L1 runs with
 * panic=-1 and -no-reboot, so a panic ends QEMU) and L1's console shows its kernel's panic line,
 * timestamped at the start of a line, after the file's start marker. Seen on these machines:
 * "BUG: ... stack guard page was hit" / an Oops in kvm_amd, then "Kernel panic - not syncing"
 * (kvm_amd under QEMU TCG's SVM emulation, hosts/sandbox/README.md). A guest (L2) panicking cannot
 * end L1's QEMU, so the two conditions together name the sandbox, not the test.
 */
export function l1KernelCrashed(consoleText: string, file: string, status: string | undefined): boolean {
  if (status !== undefined && status !== 'exited') return false;
  const start = consoleText.lastIndexOf(`${FILE_START} ${file}`);
  if (start < 0) return false;
  return /^\[\s*\d+\.\d+\] Kernel panic - not syncing/m.test(consoleText.slice(start));
}

/** The file that started last and has no end marker (the one running when L1 stopped). */
export function runningFile(consoleText: string): string | undefined {
  const starts = [...consoleText.matchAll(new RegExp(`^${FILE_START} (\\S+)\\r?$`, 'gm'))].map((m) => m[1]!);
  const ended = endedFiles(consoleText);
  const last = starts.at(-1);
  return last !== undefined && !ended.has(last) ? last : undefined;
}

/**
 * The linux tier on a host that cannot boot Linux itself: inside the sandbox (L1), each file under
 * linux-inner's watchdog. When L1 stops before every file ended (frozen: its console silent past the
 * per-file deadline; crashed; or out of time), the files it did not end run in a fresh L1, once.
 * Returns the merged report; files that never ended, and files that ended without results, are
 * failures naming why. A file running when L1 stopped is in `retried`, with `l1Freeze` only when the
 * freeze detector stopped L1 or L1's kernel panicked (`l1KernelCrashed`); anything else that stopped
 * it counts against the file under CI=true.
 */
export async function runLinuxTierInSandbox(
  files: string[],
  o: LinuxSandboxOptions,
): Promise<{ report: TierReport; notes: string[] }> {
  const write = o.write ?? ((s: string) => process.stdout.write(s));
  const deadline = Date.now() + o.limitMs;
  const merged = emptyReport();
  const notes: string[] = [];
  let remaining = files.map((f) => relative(o.root, f));
  let lastReason = 'not run';
  const maxBoots = o.maxBoots ?? 3;
  for (let boot = 0; boot < maxBoots && remaining.length > 0; boot++) {
    const left = deadline - Date.now();
    if (left < 3 * 60_000) {
      lastReason = 'no time left in the tier for another sandbox boot';
      break;
    }
    if (boot > 0)
      write(`\nlinux tier: booting a fresh sandbox for ${remaining.length} file(s) the last one did not end\n`);
    const out = join(o.tmp, `linux-out-${boot}`);
    const innerArgs = [
      join(o.compiled, 'test', 'runner', 'linux-inner.js'),
      '--out',
      '/tsvmm/out/linux.json',
      '--file-timeout-s',
      String(o.fileTimeoutS),
      ...remaining,
    ];
    const inner = `cd '${o.root}' && node ${innerArgs.map((a) => `'${a}'`).join(' ')}`;
    let r;
    const live = new HeartbeatFilter(write);
    try {
      r = await (o.run ?? runInSandbox)(inner, {
        timeoutMs: left,
        // linux-inner prints a heartbeat every 30 s: minutes of silence mean L1 froze (seen: QEMU
        // TCG spinning at 160% CPU, nothing printed, not even L1's soft-lockup detector)
        silenceTimeoutMs: o.silenceMs ?? 5 * 60_000,
        collectInto: out,
        onOutput: (s) => live.push(s),
        variant: o.variant,
        ledger: { source: 'tier', running: runningFile },
      });
    } catch (e) {
      lastReason = `the sandbox could not start: ${(e as Error).message}`;
      notes.push(lastReason);
      break;
    }
    const ended = endedFiles(r.console);
    let rep: TierReport | undefined;
    try {
      rep = JSON.parse(readFileSync(join(out, 'linux.json'), 'utf8')) as TierReport;
    } catch {
      rep = undefined;
    }
    // the saved report may hold one file more than the markers show (killed between save and marker)
    const keep = <T extends { file?: string }>(xs: T[]) =>
      xs.filter((x) => x.file === undefined || ended.has(relative(o.root, resolve(o.root, x.file))));
    if (rep) {
      merged.passes.push(...keep(rep.passes));
      merged.failures.push(...keep(rep.failures));
      merged.pending.push(...keep(rep.pending));
      for (const x of rep.retried ?? [])
        if (ended.has(relative(o.root, resolve(o.root, x.file)))) (merged.retried ??= []).push(x);
      merged.stats.duration += rep.stats.duration;
    }
    // a file that ended in L1 has results here, or the tier says why not: never a silent zero
    failFilesWithoutResults(
      merged,
      remaining.filter((f) => ended.has(f)),
      o.root,
      rep
        ? 'ended in L1 but produced no results'
        : 'ended in L1 but its results did not come out of the sandbox (linux.json missing or unreadable)',
    );
    remaining = remaining.filter((f) => !ended.has(f));
    if (remaining.length === 0) break;
    const running = runningFile(r.console);
    lastReason = r.report.split('\n')[0]!;
    notes.push(
      `sandbox boot ${boot + 1} stopped before ${remaining.length} file(s) ended${running ? ` (running: ${running})` : ''}: ${lastReason}`,
    );
    // only the freeze detector (a console silent for minutes, heartbeat included) or L1's own kernel
    // panic on its console clears the file itself
    if (running) {
      const panicked = l1KernelCrashed(r.console, running, r.status);
      const reason = `L1 stopped while it ran: ${panicked ? "L1's kernel panicked; " : ''}${lastReason}`;
      (merged.retried ??= []).push({
        file: running,
        reason,
        l1Freeze: panicked || r.status === 'silent' || r.status === 'frozen',
      });
    }
  }
  for (const f of remaining)
    merged.failures.push({ fullTitle: `[sandbox] ${f}`, file: join(o.root, f), message: `did not end: ${lastReason}` });
  return { report: recount(merged), notes };
}
