import { relative, resolve } from 'node:path';
import type { TierReport } from './reporter.js';

/** Test tiers by file name: `*.test.js` unit, `*.kvm.test.js` kvm, `*.linux.test.js` linux. */
export type Tier = 'unit' | 'kvm' | 'linux' | 'sandbox';

/** What one tier came to: the counts of the closing line plus everything needed to explain them. */
export interface TierOutcome {
  tier: Tier;
  passed: number;
  /** Failed tests, plus (under CI=true) skipped tests and unexplained hangs: each is also in `failures`. */
  failed: number;
  /** Pending (skipped) tests. Under CI=true each one is also counted in `failed`. */
  skipped: number;
  /** Why the tier did not run (or broke), if it did not. */
  note?: string;
  failures: TierReport['failures'];
  pendingTests: TierReport['pending'];
  retried: NonNullable<TierReport['retried']>;
  seconds: number;
}

/** CI=true (or 1/yes): every pending test, hang or missing tool is a failure. */
export { isCi } from '../setup/environment.js';

/** A report entry's file relative to `root` (entries carry absolute or root-relative paths). */
export const relFile = (root: string, file: string): string => relative(root, resolve(root, file));

/**
 * Adds a failure for each of `files` (relative to root) that has no entry at all in `report`: a file
 * that produced no results (it defined no tests, crashed before mocha saw them, or its results were
 * lost on the way back) is a failure, never a zero.
 */
export function failFilesWithoutResults(report: TierReport, files: string[], root: string, why: string): TierReport {
  const seen = new Set<string>();
  for (const x of [...report.passes, ...report.failures, ...report.pending]) {
    if (x.file !== undefined) seen.add(relFile(root, x.file));
  }
  for (const f of files) {
    const rel = relFile(root, f);
    if (seen.has(rel)) continue;
    report.failures.push({ fullTitle: `[runner] ${rel}`, file: resolve(root, f), message: `${rel}: ${why}` });
  }
  report.stats.failures = report.failures.length;
  report.stats.tests = report.passes.length + report.failures.length + report.pending.length;
  return report;
}

/**
 * The outcome of a tier from its report and mocha's exit status. No report is one failure; a
 * non-zero exit with no failure recorded (a crash after the tests) is one failure too.
 */
export function outcome(
  tier: Tier,
  seconds: number,
  report: TierReport | undefined,
  exit: number | null | undefined,
  note?: string,
): TierOutcome {
  if (!report) {
    const why = note ?? `mocha ended (status ${exit}) without writing its report`;
    return {
      tier,
      passed: 0,
      failed: 1,
      skipped: 0,
      seconds,
      pendingTests: [],
      retried: [],
      failures: [{ fullTitle: `[runner] ${tier} tier`, message: why }],
      note: why,
    };
  }
  const o: TierOutcome = {
    tier,
    passed: report.passes.length,
    failed: report.failures.length,
    skipped: report.pending.length,
    failures: [...report.failures],
    pendingTests: [...report.pending],
    retried: [...(report.retried ?? [])],
    seconds,
    note,
  };
  if (exit !== 0 && exit !== undefined && o.failed === 0) {
    const why = `mocha exited with ${exit}`;
    o.failures.push({ fullTitle: `[runner] ${tier} tier`, message: why });
    o.failed = 1;
    o.note = `${note ? note + '; ' : ''}${why}`;
  }
  return o;
}

/** A tier that could not run at all (no /dev/kvm, no guest kit): a failure under CI=true, a skip otherwise. */
export function cannotRun(tier: Tier, reason: string, ci: boolean): TierOutcome {
  return {
    tier,
    passed: 0,
    failed: ci ? 1 : 0,
    skipped: 0,
    seconds: 0,
    pendingTests: [],
    retried: [],
    failures: ci ? [{ fullTitle: `[runner] ${tier} tier`, message: `cannot run: ${reason}` }] : [],
    note: `${ci ? 'FAILED (CI=true): ' : 'skipped: '}${reason}`,
  };
}

/**
 * The CI policy, applied once to a tier's outcome: under CI=true each pending test and each hang
 * that is not the sandbox's own L1 freeze (proven by the freeze detector: `l1Freeze`) is a failure.
 * A file that passed on its rerun after such a hang thus still fails the run. Locally both only
 * show in the summary.
 */
export function applyCiPolicy(o: TierOutcome, ci: boolean): TierOutcome {
  if (!ci) return o;
  const out: TierOutcome = { ...o, failures: [...o.failures] };
  for (const p of o.pendingTests) {
    out.failures.push({
      fullTitle: `[skipped under CI=true] ${p.fullTitle}`,
      file: p.file,
      message: 'a skipped test fails the run under CI=true: install what it needs (.ci/run) or fix its skip condition',
    });
  }
  for (const r of o.retried) {
    if (r.l1Freeze) continue;
    out.failures.push({
      fullTitle: `[hung under CI=true] ${r.file}`,
      file: r.file,
      message: `hung (${r.reason.split('\n')[0]}); a hang fails the run under CI=true even when the rerun passed`,
    });
  }
  out.failed = o.failed + (out.failures.length - o.failures.length);
  return out;
}

/** The closing line: `N passed, N failed, N skipped` (.ci/run and the CI judge read it). */
export function closingLine(results: TierOutcome[]): string {
  const sum = (k: 'passed' | 'failed' | 'skipped') => results.reduce((n, r) => n + r[k], 0);
  return `${sum('passed')} passed, ${sum('failed')} failed, ${sum('skipped')} skipped`;
}

/** The summary block: one line per tier, its failures, skips and reruns, then the closing line last. */
export function summaryLines(results: TierOutcome[], root: string, ci: boolean): string[] {
  const out: string[] = [];
  const where = (file?: string) => (file ? ` (${relFile(root, file)})` : '');
  for (const r of results) {
    const counts = `${r.passed} passed, ${r.failed} failed, ${r.skipped} skipped, ${r.retried.length} retried`;
    out.push(`${r.tier}: ${counts} (${r.seconds.toFixed(1)} s)${r.note ? ` - ${r.note}` : ''}`);
    for (const f of r.failures) out.push(`  FAIL ${f.fullTitle}${where(f.file)}: ${f.message.split('\n')[0]}`);
    if (!ci) for (const p of r.pendingTests) out.push(`  SKIPPED ${p.fullTitle}${where(p.file)}`);
    for (const x of r.retried) {
      const verdict = x.l1Freeze
        ? 'the sandbox L1 froze, so the later run is what counts'
        : ci
          ? 'counted as a failure'
          : 'the later run is what counts (a failure under CI=true)';
      out.push(`  RETRIED ${relFile(root, x.file)} after a hang (${x.reason.split('\n')[0]}); ${verdict}`);
    }
  }
  const skipped = results.reduce((n, r) => n + r.skipped, 0);
  if (ci && skipped > 0) out.push(`under CI=true the ${skipped} skipped test(s) count as failed too`);
  out.push(closingLine(results));
  return out;
}

/** The run's exit status: non-zero on any failure, and under CI=true on any skipped test. */
export function exitStatus(results: TierOutcome[], ci: boolean): number {
  return results.some((r) => r.failed > 0 || (ci && r.skipped > 0)) ? 1 : 0;
}
