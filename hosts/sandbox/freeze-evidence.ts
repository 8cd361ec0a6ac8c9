/**
 * Evidence about L1 freezes from what earlier runs left behind (issue 19 bug 4): logs of the linux tier and the bench
 * (their console output, as tee'd to files), the freeze study's JSON lines and the L1 boot ledger (ledger.ts), turned
 * into one list of L1 boots, and rates with exact 95 % intervals. Pure functions; freeze-ledger.ts is the command.
 */
import { FREEZE_OUTCOMES, configLabel, type L1BootRecord, type L1Outcome } from './ledger.js';

/** One L1 boot as some evidence shows it. */
export interface BootEvidence {
  /** tier, bench, run, study (and for ledger records their own source). */
  source: string;
  /** Where it was read (a log file, the ledger). */
  file: string;
  /** Day (YYYY-MM-DD): a log's modification time, a record's time. */
  date: string;
  /** L1's configuration (configLabel), or DEFAULT_LABEL when the log does not show it. */
  label: string;
  /** Seconds L1 ran, when the evidence says. */
  seconds?: number;
  /** How it ended; 'unknown' when the log was cut before it said. */
  outcome: L1Outcome | 'unknown';
  /** What ran when it stopped (a test file), when shown. */
  running?: string;
  /** The report's first line when it stopped. */
  reason?: string;
}

/** The label of boots whose log does not show L1's configuration: the default of the time. */
export const DEFAULT_LABEL = 'default (tcg,thread=multi max smp2; not in the log)';

/** A stop reason (describeBoot's words after `sandbox (L1): `) as an outcome; the boot's console decides panics. */
export function outcomeOfReason(reason: string, consoleText = ''): L1Outcome {
  if (/console stayed silent/.test(reason)) return 'silent';
  if (/: froze \(|\bfroze\b/.test(reason)) return 'frozen';
  if (/timed out after/.test(reason)) return 'timeout';
  if (/stopped after/.test(reason)) return 'aborted';
  if (/before the script reported/.test(reason) && /^\[\s*\d+\.\d+\] Kernel panic - not syncing/m.test(consoleText))
    return 'panicked';
  return 'failed';
}

const secondsIn = (reason: string): number | undefined => {
  const m = /after ([\d.]+) s/.exec(reason);
  return m ? Number(m[1]) : undefined;
};

/** The linux tier's runs in a log: each run's boots (1 + the runner's re-boots) and how each ended. */
export function tierBoots(text: string, file: string, date: string): BootEvidence[] {
  const out: BootEvidence[] = [];
  const starts = [...text.matchAll(/^Running the linux tier inside the sandbox \(L1\)\./gm)].map((m) => m.index);
  starts.forEach((start, i) => {
    const seg = text.slice(start, starts[i + 1] ?? text.length);
    const summary = /^linux: \d+ passed.*?\(([\d.]+) s\)(.*)$/m.exec(seg);
    // the console of each boot: between the re-boot lines
    const consoles = seg.split(/^linux tier: booting a fresh sandbox.*$/m);
    const boots = consoles.length;
    const stops = new Map<number, { reason: string; running?: string }>();
    if (summary) {
      const re =
        /sandbox boot (\d+) stopped before \d+ file\(s\) ended(?: \(running: (\S+)\))?: (sandbox \(L1\): .*?)(?=; sandbox boot \d|$)/g;
      for (const m of summary[2]!.matchAll(re)) stops.set(Number(m[1]), { running: m[2], reason: m[3]! });
    }
    let stoppedSecs = 0;
    for (const s of stops.values()) stoppedSecs += secondsIn(s.reason) ?? 0;
    const finished = boots - stops.size;
    for (let b = 1; b <= boots; b++) {
      const stop = stops.get(b);
      const e: BootEvidence = { source: 'tier', file, date, label: DEFAULT_LABEL, outcome: 'unknown' };
      if (stop) {
        e.outcome = outcomeOfReason(stop.reason, consoles[b - 1]);
        e.seconds = secondsIn(stop.reason);
        e.reason = stop.reason;
        if (stop.running) e.running = stop.running;
      } else if (summary) {
        e.outcome = 'finished';
        e.seconds = Math.max(0, (Number(summary[1]) - stoppedSecs) / finished);
      }
      out.push(e);
    }
  });
  return out;
}

/** The bench's L1 boots in a log: one per `starting the sandbox`, its time the sum of its rows' sandbox seconds. */
export function benchBoots(text: string, file: string, date: string): BootEvidence[] {
  const starts = [...text.matchAll(/bench: starting the sandbox/g)].map((m) => m.index);
  return starts.map((start, i) => {
    const seg = text.slice(start, starts[i + 1] ?? text.length);
    let seconds = 0;
    for (const m of seg.matchAll(/bench: \S+ sandbox: (\d+) s$/gm)) seconds += Number(m[1]);
    const noResults = /the sandbox run produced no results \((sandbox \(L1\): .*)\)\r?$/m.exec(seg);
    const e: BootEvidence = { source: 'bench', file, date, label: DEFAULT_LABEL, outcome: 'finished' };
    if (seconds > 0) e.seconds = seconds;
    if (noResults) {
      e.outcome = outcomeOfReason(noResults[1]!, seg);
      e.reason = noResults[1];
      e.seconds = secondsIn(noResults[1]!) ?? e.seconds;
    }
    return e;
  });
}

/**
 * `vmm run --sandbox` boots that stopped (its notices and reports; a run that ended well leaves no line, so these
 * have no denominator and are listed, not counted in rates).
 */
export function runStops(text: string, file: string, date: string): BootEvidence[] {
  return [...text.matchAll(/^vmm: sandbox \(L1\)(?::| froze) .*$/gm)].map((m) => {
    const reason = m[0].replace(/^vmm: /, '');
    return {
      source: 'run',
      file,
      date,
      label: DEFAULT_LABEL,
      outcome: outcomeOfReason(reason),
      seconds: secondsIn(reason),
      reason,
    };
  });
}

/** The freeze study's JSON lines (freeze-study.ts --out): {status, seconds, exitCode, append, cpus, ...}. */
export function studyBoots(text: string, file: string, date: string): BootEvidence[] {
  const out: BootEvidence[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      const j = JSON.parse(line) as { status?: string; seconds?: number; exitCode?: number; append?: string };
      if (typeof j.status !== 'string') continue;
      const outcome: L1Outcome =
        j.status === 'exited'
          ? j.exitCode === undefined
            ? 'failed'
            : 'finished'
          : ((['frozen', 'silent', 'timeout', 'aborted'] as const).find((s) => s === j.status) ?? 'failed');
      out.push({
        source: 'study',
        file,
        date,
        label: j.append ? `${DEFAULT_LABEL} +${j.append}` : DEFAULT_LABEL,
        seconds: j.seconds,
        outcome,
      });
    } catch {
      // not a study line
    }
  }
  return out;
}

/** Ledger records (ledger.ts) as evidence. */
export function ledgerBoots(records: readonly L1BootRecord[], file: string): BootEvidence[] {
  return records.map((r) => ({
    source: r.source,
    file,
    date: r.time.slice(0, 10),
    label: configLabel(r.config, r.variant),
    seconds: r.seconds,
    outcome: r.outcome,
    ...(r.running ? { running: r.running } : {}),
    ...(r.reason ? { reason: r.reason } : {}),
  }));
}

/** ln C(n, k) */
function lnChoose(n: number, k: number): number {
  let s = 0;
  for (let i = 1; i <= k; i++) s += Math.log(n - k + i) - Math.log(i);
  return s;
}

/** P(X <= k) for X ~ Binomial(n, p). */
function binomCdf(k: number, n: number, p: number): number {
  if (p <= 0) return 1;
  if (p >= 1) return k >= n ? 1 : 0;
  let s = 0;
  for (let i = 0; i <= k; i++) s += Math.exp(lnChoose(n, i) + i * Math.log(p) + (n - i) * Math.log(1 - p));
  return Math.min(1, s);
}

/** The p in [0, 1] where f (decreasing in p) crosses `target`, by bisection. */
function solveDecreasing(f: (p: number) => number, target: number): number {
  let lo = 0;
  let hi = 1;
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2;
    if (f(mid) > target) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/** The exact (Clopper-Pearson) two-sided 95 % interval of a rate seen k times in n trials. */
export function binomialInterval(k: number, n: number): [number, number] {
  if (n === 0) return [0, 1];
  const lo = k === 0 ? 0 : solveDecreasing((p) => binomCdf(k - 1, n, p), 0.975);
  const hi = k === n ? 1 : solveDecreasing((p) => binomCdf(k, n, p), 0.025);
  return [lo, hi].map((x) => Math.round(x * 1000) / 1000) as [number, number];
}

/** Freeze counts and rates of a group of boots. */
export interface FreezeRate {
  boots: number;
  /** Boots that ended frozen, silent or panicked. */
  freezes: number;
  /** Boots whose end the evidence does not show. */
  unknown: number;
  /** L1 hours, over the boots whose time is known. */
  hours: number;
  perBoot: number;
  /** The exact 95 % interval of the per-boot rate. */
  perBootInterval: [number, number];
  /** Freezes per L1 hour (over the boots with known time). */
  perHour: number;
}

/** Counts and rates of a group of boots (boots of unknown outcome count in `unknown` only). */
export function freezeRate(boots: readonly BootEvidence[]): FreezeRate {
  const known = boots.filter((b) => b.outcome !== 'unknown');
  const freezes = known.filter((b) => (FREEZE_OUTCOMES as readonly string[]).includes(b.outcome)).length;
  const hours = known.reduce((h, b) => h + (b.seconds ?? 0), 0) / 3600;
  return {
    boots: known.length,
    freezes,
    unknown: boots.length - known.length,
    hours: Math.round(hours * 100) / 100,
    perBoot: known.length ? Math.round((freezes / known.length) * 1000) / 1000 : 0,
    perBootInterval: binomialInterval(freezes, known.length),
    perHour: hours > 0 ? Math.round((freezes / hours) * 100) / 100 : 0,
  };
}

/** The chance that n boots of a configuration with freeze rate p show no freeze at all: (1 - p)^n. */
export function chanceOfNoFreeze(p: number, n: number): number {
  return Math.round((1 - p) ** n * 1000) / 1000;
}

/** Groups boots by a key, each group's rate. */
export function ratesBy(
  boots: readonly BootEvidence[],
  key: (b: BootEvidence) => string,
): { key: string; rate: FreezeRate }[] {
  const groups = new Map<string, BootEvidence[]>();
  for (const b of boots) groups.set(key(b), [...(groups.get(key(b)) ?? []), b]);
  return [...groups.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, g]) => ({ key: k, rate: freezeRate(g) }));
}
