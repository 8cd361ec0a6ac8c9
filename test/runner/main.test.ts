import { expect } from 'chai';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HostInfo } from '../../hosts/sandbox/detect.js';
import { projectLayout } from '../../hosts/sandbox/sandbox.js';
import type { TierReport } from './reporter.js';
import { main, type RunnerDeps } from './tiers.js';

const hw: HostInfo = {
  kind: 'hardware',
  devKvm: true,
  cpuFlag: 'svm',
  module: 'kvm_amd',
  canBootLinux: true,
  inSandbox: false,
};
const pvm: HostInfo = { kind: 'pvm', devKvm: true, module: 'kvm_pvm', canBootLinux: false, inSandbox: false };

describe('run-tiers main(): real mocha runs of small test files, judged and summed', function () {
  this.timeout(60_000);
  const { root } = projectLayout();
  let compiled: string;
  let printed: string;
  const write = (name: string, body: string) => {
    mkdirSync(join(compiled, name, '..'), { recursive: true });
    writeFileSync(join(compiled, name), body);
  };
  /** Runs main() over the fixture tree with CI set or not; returns the exit status. */
  const run = (argv: string[], ci: boolean, deps: Partial<RunnerDeps> = {}) =>
    main(argv, {
      root,
      compiled,
      env: { ...process.env, CI: ci ? 'true' : '' },
      childStdio: 'ignore',
      write: (s) => {
        printed += s;
      },
      hasKvm: () => true,
      host: () => hw,
      kitDir: async () => '/kit/dir',
      ...deps,
    });
  const lastLine = () => printed.trimEnd().split('\n').at(-1);

  beforeEach(() => {
    printed = '';
    compiled = mkdtempSync(join(tmpdir(), 'tiers-main-'));
    write('a/pass.test.js', `it('passes', () => {});\n`);
    write('a/skip.test.js', `it('runs', () => {});\nit('skips', function () { this.skip(); });\n`);
    write('b/k.kvm.test.js', `it('kvm passes', () => {});\n`);
  });
  afterEach(() => rmSync(compiled, { recursive: true, force: true }));

  it('locally reports a skipped test in the closing line and passes', async () => {
    expect(await run(['--tier', 'unit'], false)).to.equal(0);
    expect(lastLine()).to.equal('2 passed, 0 failed, 1 skipped');
    expect(printed).to.match(/SKIPPED skips \(.*skip\.test\.js\)/);
  });

  it('under CI=true a skipped test fails the run, named', async () => {
    expect(await run(['--tier', 'unit', '--tier', 'kvm'], true)).to.equal(1);
    expect(lastLine()).to.equal('3 passed, 1 failed, 1 skipped');
    expect(printed).to.match(/FAIL \[skipped under CI=true\] skips \(.*skip\.test\.js\)/);
    expect(printed).to.include('unit: 2 passed, 1 failed, 1 skipped, 0 retried');
  });

  it('a file that produced no results is a failure', async () => {
    write('a/empty.test.js', `// defines no test\n`);
    expect(await run(['--tier', 'unit', '--only', 'a/'], false)).to.equal(1);
    expect(lastLine()).to.equal('2 passed, 1 failed, 1 skipped');
    expect(printed).to.match(/FAIL \[runner\] .*a\/empty\.test\.js: .*produced no results/);
  });

  it('under CI=true a stray .only fails the run', async () => {
    write('a/only.test.js', `it.only('alone', () => {});\n`);
    expect(await run(['--tier', 'unit'], true)).to.equal(1);
    expect(lastLine()).to.match(/^\d+ passed, [1-9]\d* failed, \d+ skipped$/);
  });

  it('a tier with no test files is a failure, not a zero', async () => {
    expect(await run(['--tier', 'linux'], false)).to.equal(1);
    expect(lastLine()).to.equal('0 passed, 1 failed, 0 skipped');
    expect(printed).to.match(/linux: 0 passed, 1 failed.* - no linux test files under/);
  });

  it('--only that matches no file is a failure', async () => {
    expect(await run(['--only', 'nothing-like-this'], false)).to.equal(1);
    expect(printed).to.match(/no test file matches --only nothing-like-this/);
  });

  it('the kvm tier without /dev/kvm fails under CI=true and is a note locally', async () => {
    expect(await run(['--tier', 'kvm'], true, { hasKvm: () => false })).to.equal(1);
    expect(lastLine()).to.equal('0 passed, 1 failed, 0 skipped');
    printed = '';
    expect(await run(['--tier', 'kvm'], false, { hasKvm: () => false })).to.equal(0);
    expect(printed).to.match(/kvm: 0 passed, 0 failed, 0 skipped, 0 retried \(0\.0 s\) - skipped: no \/dev\/kvm/);
  });

  it('on a host that boots Linux runs the linux tier directly with the guest kit and TSVMM_LINUX set', async () => {
    write(
      'c/g.linux.test.js',
      `const assert = require('node:assert');\n` +
        `it('sees the kit', () => {\n  assert.equal(process.env.TSVMM_GUESTKIT_DIR, '/kit/dir');\n` +
        `  assert.equal(process.env.TSVMM_LINUX, '1');\n});\n`,
    );
    expect(await run(['--tier', 'linux'], true)).to.equal(0);
    expect(lastLine()).to.equal('1 passed, 0 failed, 0 skipped');
    printed = '';
    expect(
      await run(['--tier', 'linux'], true, {
        kitDir: async () => {
          throw new Error('no kernel');
        },
      }),
    ).to.equal(1);
    expect(printed).to.match(/linux: 0 passed, 1 failed.* - FAILED \(CI=true\): no guest kit: no kernel/);
  });

  it('counts a sandbox run: a hang the freeze detector proved passes, any other hang fails under CI=true', async () => {
    write('c/g.linux.test.js', '');
    const sandbox =
      (retried: TierReport['retried']): RunnerDeps['runInSandbox'] =>
      async (files) => ({
        notes: [],
        report: {
          stats: { tests: 1, passes: 1, failures: 0, pending: 0, duration: 1 },
          passes: [{ fullTitle: 'boots', file: files[0] }],
          failures: [],
          pending: [],
          retried,
        },
      });
    const froze = [{ file: 'c/g.linux.test.js', reason: 'L1 stopped while it ran: silent', l1Freeze: true }];
    expect(await run(['--tier', 'linux'], true, { host: () => pvm, runInSandbox: sandbox(froze) })).to.equal(0);
    expect(lastLine()).to.equal('1 passed, 0 failed, 0 skipped');
    expect(printed).to.match(/linux: 1 passed, 0 failed, 0 skipped, 1 retried/);
    expect(printed).to.match(/RETRIED c\/g\.linux\.test\.js after a hang .*the sandbox L1 froze/);
    printed = '';
    const hung = [{ file: 'c/g.linux.test.js', reason: 'g.linux.test.js did not finish within 900 s' }];
    expect(await run(['--tier', 'linux'], true, { host: () => pvm, runInSandbox: sandbox(hung) })).to.equal(1);
    expect(lastLine()).to.equal('1 passed, 1 failed, 0 skipped');
    expect(printed).to.match(/FAIL \[hung under CI=true\] c\/g\.linux\.test\.js/);
  });
});
