import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  applyCiPolicy,
  cannotRun,
  closingLine,
  exitStatus,
  failFilesWithoutResults,
  outcome,
  summaryLines,
} from './counting.js';
import type { TierReport } from './reporter.js';
import { emptyReport, recount } from './watchdog.js';

const root = '/r';
/** A report with `p` passes, `f` failures and `s` pending tests, all in file a.test.js. */
function rep(p: number, f: number, s: number, retried?: TierReport['retried']): TierReport {
  const r = emptyReport();
  for (let i = 0; i < p; i++) r.passes.push({ fullTitle: `p${i}`, file: '/r/a.test.js' });
  for (let i = 0; i < f; i++) r.failures.push({ fullTitle: `f${i}`, file: '/r/a.test.js', message: 'boom\nstack' });
  for (let i = 0; i < s; i++) r.pending.push({ fullTitle: `s${i}`, file: '/r/a.test.js' });
  if (retried) r.retried = retried;
  return recount(r);
}

describe('run-tiers counting (outcome, CI policy, closing line)', () => {
  it('counts passes, failures and pending tests of a report', () => {
    const o = outcome('unit', 1, rep(3, 1, 2), 1);
    expect([o.passed, o.failed, o.skipped]).to.deep.equal([3, 1, 2]);
    expect(o.note).to.equal(undefined);
  });

  it('counts a missing report, and a non-zero exit with no failure recorded, as one failure', () => {
    const none = outcome('kvm', 1, undefined, 7);
    expect([none.passed, none.failed]).to.deep.equal([0, 1]);
    expect(none.failures[0]!.message).to.equal('mocha ended (status 7) without writing its report');
    const crashed = outcome('unit', 1, rep(2, 0, 0), 3);
    expect([crashed.passed, crashed.failed]).to.deep.equal([2, 1]);
    expect(crashed.note).to.equal('mocha exited with 3');
    expect(outcome('unit', 1, rep(2, 0, 0), 0).failed).to.equal(0);
  });

  it('fails every listed file that has no entry in the report', () => {
    const files = ['a.test.js', 'b.test.js', '/r/c/d.test.js'];
    const r = failFilesWithoutResults(rep(1, 0, 1), files, root, 'produced no results');
    expect(r.failures.map((f) => [f.fullTitle, f.message])).to.deep.equal([
      ['[runner] b.test.js', 'b.test.js: produced no results'],
      ['[runner] c/d.test.js', 'c/d.test.js: produced no results'],
    ]);
    expect(r.stats).to.include({ failures: 2, tests: 4 });
    // a file with only a pending test has results: the pending rule (CI policy) judges it
    expect(failFilesWithoutResults(rep(0, 0, 1), ['a.test.js'], root, 'x').failures).to.deep.equal([]);
  });

  it('a tier that cannot run fails under CI=true and is a note otherwise', () => {
    expect(cannotRun('kvm', 'no /dev/kvm', true)).to.include({ failed: 1, note: 'FAILED (CI=true): no /dev/kvm' });
    expect(cannotRun('kvm', 'no /dev/kvm', false)).to.include({ failed: 0, note: 'skipped: no /dev/kvm' });
  });

  it('under CI=true each pending test and each hang that is not an L1 freeze becomes a failure', () => {
    const o = outcome(
      'linux',
      1,
      rep(2, 1, 2, [
        { file: '/r/hung.linux.test.js', reason: 'did not finish within 900 s\nmore' },
        { file: '/r/froze.linux.test.js', reason: 'L1 stopped while it ran: silent', l1Freeze: true },
      ]),
      1,
    );
    const ci = applyCiPolicy(o, true);
    expect([ci.passed, ci.failed, ci.skipped]).to.deep.equal([2, 4, 2]);
    expect(ci.failures.map((f) => f.fullTitle)).to.deep.equal([
      'f0',
      '[skipped under CI=true] s0',
      '[skipped under CI=true] s1',
      '[hung under CI=true] /r/hung.linux.test.js',
    ]);
    expect(ci.failures[3]!.message).to.match(/^hung \(did not finish within 900 s\); a hang fails the run/);
    // locally the same outcome is left alone: skips and reruns are shown, not failed
    expect(applyCiPolicy(o, false)).to.equal(o);
    expect(o.failed).to.equal(1);
  });

  it('closes with `N passed, N failed, N skipped`, in the form .ci/run accepts', () => {
    const results = [applyCiPolicy(outcome('unit', 2, rep(5, 0, 1), 0), true), outcome('kvm', 1, rep(3, 1, 0), 1)];
    expect(closingLine(results)).to.equal('8 passed, 2 failed, 1 skipped');
    const lines = summaryLines(results, root, true);
    expect(lines.at(-1)).to.equal('8 passed, 2 failed, 1 skipped');
    expect(lines[0]).to.equal('unit: 5 passed, 1 failed, 1 skipped, 0 retried (2.0 s)');
    expect(lines).to.include(
      '  FAIL [skipped under CI=true] s0 (a.test.js): a skipped test fails the run under CI=true: ' +
        'install what it needs (.ci/run) or fix its skip condition',
    );
    expect(lines).to.include('  FAIL f0 (a.test.js): boom');
    expect(lines).to.include('under CI=true the 1 skipped test(s) count as failed too');
    // .ci/run checks the last line with this regex
    const ciRun = readFileSync(join(process.cwd(), '.ci', 'run'), 'utf8');
    const re = /\[\[ "\$last" =~ (.+) \]\]/.exec(ciRun)![1]!;
    const bash = new RegExp(re.replace(/\\ /g, ' '));
    expect(bash.test(lines.at(-1)!)).to.equal(true);
    expect(bash.test('8 passed, 2 failed')).to.equal(true);
    expect(bash.test('8 passed, 2 failed, 1 pending')).to.equal(false);
  });

  it('lists skipped tests and reruns locally without failing on them', () => {
    const o = outcome('linux', 1, rep(1, 0, 1, [{ file: 'x.linux.test.js', reason: 'hang' }]), 0);
    const lines = summaryLines([applyCiPolicy(o, false)], root, false);
    expect(lines).to.include('  SKIPPED s0 (a.test.js)');
    expect(lines).to.include(
      '  RETRIED x.linux.test.js after a hang (hang); the later run is what counts (a failure under CI=true)',
    );
    expect(lines.at(-1)).to.equal('1 passed, 0 failed, 1 skipped');
    expect(exitStatus([o], false)).to.equal(0);
    expect(exitStatus([o], true)).to.equal(1);
    expect(exitStatus([outcome('unit', 1, rep(1, 0, 0), 0)], true)).to.equal(0);
  });
});
