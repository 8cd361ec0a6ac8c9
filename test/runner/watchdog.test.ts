import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runFilesWithWatchdog } from './watchdog.js';

describe('linux-tier watchdog (one process per file under a deadline)', function () {
  this.timeout(30_000);
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'watchdog-'));
    const report = (passes: number, failures: number) =>
      `JSON.stringify({ stats: { tests: ${passes + failures}, passes: ${passes}, failures: ${failures}, pending: 0, duration: 5 }, ` +
      `failures: Array.from({ length: ${failures} }, (_, i) => ({ fullTitle: 'f' + i, message: 'boom' })), ` +
      `passes: Array.from({ length: ${passes} }, (_, i) => ({ fullTitle: 'p' + i })), pending: [] })`;
    writeFileSync(
      join(dir, 'passes.mjs'),
      `import { writeFileSync } from 'node:fs'; writeFileSync(process.argv[2], ${report(2, 0)});`,
    );
    writeFileSync(
      join(dir, 'fails.mjs'),
      `import { writeFileSync } from 'node:fs'; writeFileSync(process.argv[2], ${report(1, 1)}); process.exitCode = 1;`,
    );
    // a main thread that never yields: mocha's own timeouts could not fire here
    writeFileSync(join(dir, 'spins.mjs'), `function spinForever() { for (;;) {} } spinForever();`);
    writeFileSync(join(dir, 'crashes.mjs'), `process.exit(3);`);
    // hangs the first time, passes the second
    writeFileSync(
      join(dir, 'flaky.mjs'),
      `import { existsSync, writeFileSync } from 'node:fs'; const m = ${JSON.stringify(join(dir, 'flaky.marker'))}; ` +
        `if (existsSync(m)) writeFileSync(process.argv[2], ${report(1, 0)}); else { writeFileSync(m, ''); setInterval(() => {}, 1000); }`,
    );
    // a report with no test in it (a file whose tests never registered)
    writeFileSync(
      join(dir, 'empty.mjs'),
      `import { writeFileSync } from 'node:fs'; writeFileSync(process.argv[2], ${report(0, 0)});`,
    );
    // waiting forever on a timer: the main thread answers with a diagnostic report
    writeFileSync(join(dir, 'waits.mjs'), `setInterval(() => {}, 1000);`);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('counts a file that produced no results as a failure', async () => {
    const r = await runFilesWithWatchdog([join(dir, 'empty.mjs'), join(dir, 'passes.mjs')], {
      root: dir,
      mochaArgs: (file, rep) => [file, rep],
      workDir: join(dir, 'work4'),
      fileTimeoutMs: 10_000,
      write: () => {},
    });
    expect(r.failures.map((f) => [f.fullTitle, f.message])).to.deep.equal([
      ['[watchdog] empty.mjs', 'empty.mjs produced no results (status 0)'],
    ]);
    expect(r.stats).to.include({ passes: 2, failures: 1 });
  });

  it('prints the diagnostic report of a file that waits forever, then kills it', async () => {
    let printed = '';
    const r = await runFilesWithWatchdog([join(dir, 'waits.mjs')], {
      root: dir,
      mochaArgs: (file, rep) => [file, rep],
      workDir: join(dir, 'work2'),
      fileTimeoutMs: 1500,
      reportGraceMs: 15_000,
      write: (s) => {
        printed += s;
      },
    });
    expect(r.failures.map((f) => f.fullTitle)).to.deep.equal(['[watchdog] waits.mjs']);
    expect(printed).to.match(/main-thread JavaScript stack/);
    expect(printed).to.match(/active libuv handles: .*timer/);
    expect(printed).not.to.match(/not serving its event loop/);
  });

  it('runs a hung file once more with retryHung, counts only the second run and keeps the hang on record', async () => {
    let printed = '';
    const r = await runFilesWithWatchdog([join(dir, 'flaky.mjs'), join(dir, 'spins.mjs')], {
      root: dir,
      mochaArgs: (file, rep) => [file, rep],
      workDir: join(dir, 'work3'),
      fileTimeoutMs: 1500,
      reportGraceMs: 1000,
      write: (s) => {
        printed += s;
      },
      retryHung: true,
    });
    expect(r.passes.map((p) => p.fullTitle)).to.deep.equal(['p0']);
    // a file that hangs twice fails once (the second run's watchdog failure)
    expect(r.failures.map((f) => f.fullTitle)).to.deep.equal(['[watchdog] spins.mjs']);
    expect(r.retried!.map((x) => x.file)).to.deep.equal([join(dir, 'flaky.mjs'), join(dir, 'spins.mjs')]);
    expect(printed).to.match(/running flaky\.mjs once more after the hang/);
  });

  it('merges per-file reports, kills a file that spins past its deadline with its stack printed, and counts a crash', async () => {
    let printed = '';
    const done: number[] = [];
    const files = ['passes.mjs', 'spins.mjs', 'fails.mjs', 'crashes.mjs'].map((f) => join(dir, f));
    const started = Date.now();
    const r = await runFilesWithWatchdog(files, {
      root: dir,
      mochaArgs: (file, rep) => [file, rep],
      workDir: join(dir, 'work'),
      fileTimeoutMs: 2000,
      reportGraceMs: 1500,
      write: (s) => {
        printed += s;
      },
      onFileDone: (m) => done.push(m.stats.tests),
    });
    expect(Date.now() - started).to.be.below(20_000);
    expect(r.passes.map((p) => p.fullTitle)).to.deep.equal(['p0', 'p1', 'p0']);
    expect(r.failures.map((f) => f.fullTitle)).to.deep.equal(['[watchdog] spins.mjs', 'f0', '[watchdog] crashes.mjs']);
    expect(r.failures[0]!.message).to.match(/did not finish within 2 s/);
    expect(r.failures[2]!.message).to.match(/status 3/);
    expect(r.stats).to.include({ tests: 6, passes: 3, failures: 3, pending: 0 });
    expect(done).to.deep.equal([2, 3, 5, 6]);
    expect(printed).to.match(/spins\.mjs ran past 2 s/);
    // a spinning main thread cannot write a diagnostic report: the watchdog says so and shows it running
    expect(printed).to.match(/the main thread is not serving its event loop/);
    expect(printed).to.match(/threads of \d+:\n\s+\d+ node state R/);
  });
});
