import Mocha from 'mocha';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** What a tier run leaves behind for run-tiers (machine-readable). */
export interface TierReport {
  stats: { tests: number; passes: number; failures: number; pending: number; duration: number };
  failures: { fullTitle: string; file?: string; message: string; stack?: string }[];
  passes: { fullTitle: string; file?: string; duration?: number }[];
  pending: { fullTitle: string; file?: string }[];
  /**
   * Files killed for hanging and run once more (linux tier). `l1Freeze`: the hang was the sandbox's
   * own L1 freezing (its console went silent: the freeze detector), not the file's.
   */
  retried?: { file: string; reason: string; l1Freeze?: boolean }[];
}

/**
 * Mocha reporter: the spec reporter's live output, plus a JSON report written at the end to
 * `--reporter-option output=<file>` (or $TSVMM_TIER_REPORT).
 */
export default class TierReporter extends Mocha.reporters.Spec {
  constructor(runner: Mocha.Runner, options?: Mocha.MochaOptions) {
    super(runner, options);
    const opts = options as
      { reporterOption?: Record<string, string>; reporterOptions?: Record<string, string> } | undefined;
    const out = opts?.reporterOption?.output ?? opts?.reporterOptions?.output ?? process.env.TSVMM_TIER_REPORT;
    const report: TierReport = {
      stats: { tests: 0, passes: 0, failures: 0, pending: 0, duration: 0 },
      failures: [],
      passes: [],
      pending: [],
    };
    const started = Date.now();
    runner.on('pass', (t) => report.passes.push({ fullTitle: t.fullTitle(), file: t.file, duration: t.duration }));
    runner.on('pending', (t) => report.pending.push({ fullTitle: t.fullTitle(), file: t.file }));
    runner.on('fail', (t, err: Error) =>
      report.failures.push({
        fullTitle: t.fullTitle(),
        file: t.file,
        message: String(err?.message ?? err),
        stack: err?.stack,
      }),
    );
    runner.once('end', () => {
      report.stats = {
        tests: report.passes.length + report.failures.length + report.pending.length,
        passes: report.passes.length,
        failures: report.failures.length,
        pending: report.pending.length,
        duration: Date.now() - started,
      };
      if (out) {
        mkdirSync(dirname(out), { recursive: true });
        writeFileSync(out, JSON.stringify(report, null, 1));
      }
    });
  }
}
