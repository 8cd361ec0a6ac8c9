/**
 * The L1 boot ledger (issue 19 bug 4, hosts/sandbox/README.md "Known problem"): every L1 boot of the sandbox appends
 * one JSON line (when, L1's QEMU configuration, how long, how it ended, what ran when it stopped) to a file that
 * outlives sessions, so the evidence about L1 freezes accumulates across the tier runner, the bench, `vmm run
 * --sandbox` and the freeze study. The study and freeze-ledger.ts read it back.
 */
import { spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { homedir, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import type { BootResult } from './boot.js';

/** How an L1 boot ended, as the ledger counts it. */
export type L1Outcome =
  /** The command in L1 ran to its end (whatever its exit status). */
  | 'finished'
  /** The heartbeat stopped (heartbeat.ts): the known freeze. */
  | 'frozen'
  /** The console stayed silent past the limit (the tier runner's freeze detector). */
  | 'silent'
  /** L1's kernel panicked (QEMU ended by itself with `Kernel panic` on the console). */
  | 'panicked'
  /** The wall-clock limit passed while the command still ran. */
  | 'timeout'
  /** Stopped on purpose (an abort: a share went away, the user quit). */
  | 'aborted'
  /** QEMU did not start or L1 ended before the command reported (not a freeze). */
  | 'failed';

/** The outcomes that count as the known L1 crash (a freeze in any of its forms). */
export const FREEZE_OUTCOMES: readonly L1Outcome[] = ['frozen', 'silent', 'panicked'];

/** L1's QEMU configuration, read from its command line. */
export interface L1Config {
  /** `-accel` value, e.g. `tcg,thread=multi`. */
  accel: string;
  /** `-cpu` model. */
  cpu: string;
  /** `-smp` value (L1 vCPUs). */
  smp: string;
  /** `-m` value in MiB. */
  memory: string;
  /** The machine (`-M`), without the memory backend. */
  machine: string;
  /** Words of L1's kernel command line beyond the sandbox's fixed ones (e.g. `kvm_amd.npt=0`); '' if none. */
  append: string;
  /** The emulating QEMU's version (`10.0.2`), when its binary answered `--version`; absent in older lines. */
  emulator?: string;
}

/** One line of the ledger. */
export interface L1BootRecord {
  /** ISO time the boot ended. */
  time: string;
  /** Who booted L1: tier, bench, run, study, sandbox (a direct runInSandbox). */
  source: string;
  /** The sandbox variant's name ('' for the default microvm). */
  variant: string;
  config: L1Config;
  /** Wall-clock seconds of the boot (QEMU start to end). */
  seconds: number;
  outcome: L1Outcome;
  /** The command's exit status in L1, when it finished. */
  exitCode?: number;
  /** What ran when L1 stopped (a test file, an L2 run), when the caller could tell. */
  running?: string;
  /** The first line of the boot's report when it did not finish. */
  reason?: string;
  /** The host's 1-minute load average at the end (2 cores here: above 2 means L1 got less than its share). */
  load1: number;
}

/** Words the sandbox always puts on L1's command line (left out of L1Config.append). */
const FIXED_APPEND = /^(console=|panic=|quiet$|tsc_early_khz=|tsc=|tsvmm\.stdin=)/;

/** The value after `flag` in a QEMU argv ('' if absent). */
function argAfter(argv: readonly string[], flag: string): string {
  const i = argv.indexOf(flag);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1]! : '';
}

/** L1's configuration from its QEMU command line (BootResult.argv). */
export function l1ConfigOf(argv: readonly string[]): L1Config {
  const emulator = argv[0] ? qemuVersion(argv[0]) : undefined;
  return {
    accel: argAfter(argv, '-accel'),
    cpu: argAfter(argv, '-cpu'),
    smp: argAfter(argv, '-smp'),
    memory: argAfter(argv, '-m'),
    machine: argAfter(argv, '-M').replace(/,memory-backend=[^,]*/, ''),
    append: argAfter(argv, '-append')
      .split(/\s+/)
      .filter((w) => w && !FIXED_APPEND.test(w))
      .join(' '),
    ...(emulator ? { emulator } : {}),
  };
}

const versions = new Map<string, string | undefined>();
/** A QEMU binary's version from `--version` (cached per binary; undefined when it does not answer). */
function qemuVersion(bin: string): string | undefined {
  if (!versions.has(bin)) {
    const r = spawnSync(bin, ['--version'], { encoding: 'utf8', timeout: 10_000 });
    versions.set(bin, /version (\d+\.\d+\.\d+)/.exec(r.stdout ?? '')?.[1]);
  }
  return versions.get(bin);
}

/** How a boot ended, in the ledger's words. */
export function outcomeOf(r: Pick<BootResult, 'status' | 'exitCode' | 'console'>): L1Outcome {
  switch (r.status) {
    case 'frozen':
    case 'silent':
    case 'timeout':
    case 'aborted':
      return r.status;
    case 'spawn-failed':
      return 'failed';
    case 'exited':
      if (r.exitCode !== undefined) return 'finished';
      return /^\[\s*\d+\.\d+\] Kernel panic - not syncing/m.test(r.console) ? 'panicked' : 'failed';
  }
}

/** A short label of a configuration, for summaries: `tcg,thread=multi max smp2 +kvm_amd.npt=0`. */
export function configLabel(c: L1Config, variant = ''): string {
  return [
    c.emulator ? `qemu ${c.emulator}` : '',
    c.accel,
    c.cpu,
    `smp${c.smp}`,
    c.append ? `+${c.append}` : '',
    variant ? `[${variant}]` : '',
  ]
    .filter(Boolean)
    .join(' ');
}

/** The ledger's file: $TSVMM_L1_LEDGER, else ~/.cache/tsvmm/l1-boots.jsonl; undefined when set to `off`. */
export function ledgerPath(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const v = env.TSVMM_L1_LEDGER;
  if (v === 'off') return undefined;
  if (v) return v;
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'tsvmm', 'l1-boots.jsonl');
}

/** What the caller of runInSandbox tells the ledger (SandboxOptions.ledger). */
export interface LedgerNote {
  /** Who boots L1 (tier, bench, run, study); default `sandbox`. */
  source?: string;
  /** What ran when L1 stopped, from its console (e.g. the tier's running test file). */
  running?: (consoleText: string) => string | undefined;
}

/** The last non-empty console line, cut to 160 characters: what ran, when the caller cannot say better. */
export function lastConsoleLine(consoleText: string): string | undefined {
  const lines = consoleText.split('\n').map((l) => l.replace(/\r$/, '').trim());
  const last = lines.reverse().find((l) => l.length > 0);
  return last === undefined ? undefined : last.slice(0, 160);
}

/** The ledger line for one boot. */
export function bootRecord(r: BootResult, report: string, variant = '', note: LedgerNote = {}): L1BootRecord {
  const outcome = outcomeOf(r);
  const rec: L1BootRecord = {
    time: new Date().toISOString(),
    source: note.source ?? 'sandbox',
    variant,
    config: l1ConfigOf(r.argv),
    seconds: Math.round(r.durationMs / 100) / 10,
    outcome,
    load1: Math.round(loadavg()[0]! * 100) / 100,
  };
  if (r.exitCode !== undefined) rec.exitCode = r.exitCode;
  if (outcome !== 'finished') {
    rec.reason = report.split('\n')[0];
    const running = (note.running ?? lastConsoleLine)(r.console);
    if (running) rec.running = running;
  }
  return rec;
}

/**
 * Appends one record (one line, written at once). Never throws: the ledger is evidence, not a reason for a run to
 * fail; a problem is returned as a message for the caller to show or drop.
 */
export function appendBoot(rec: L1BootRecord, path = ledgerPath()): string | undefined {
  if (!path) return undefined;
  try {
    mkdirSync(dirname(path), { recursive: true });
    appendFileSync(path, `${JSON.stringify(rec)}\n`);
    return undefined;
  } catch (e) {
    return `the L1 boot ledger ${path} could not be written: ${(e as Error).message}`;
  }
}

function isRecord(x: unknown): x is L1BootRecord {
  const r = x as L1BootRecord;
  return (
    typeof r === 'object' &&
    r !== null &&
    typeof r.time === 'string' &&
    typeof r.seconds === 'number' &&
    typeof r.outcome === 'string' &&
    typeof r.config === 'object' &&
    r.config !== null
  );
}

/** The ledger's records, oldest first; lines that are not records (a torn last line) are skipped and counted. */
export function readLedger(path = ledgerPath()): { records: L1BootRecord[]; skipped: number } {
  const records: L1BootRecord[] = [];
  let skipped = 0;
  if (!path || !existsSync(path)) return { records, skipped };
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    try {
      const x: unknown = JSON.parse(line);
      if (isRecord(x)) records.push(x);
      else skipped++;
    } catch {
      skipped++;
    }
  }
  return { records, skipped };
}
