import { expect } from 'chai';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SandboxOptions } from '../../hosts/sandbox/sandbox.js';
import {
  endedFiles,
  FILE_END,
  FILE_START,
  HeartbeatFilter,
  l1KernelCrashed,
  runLinuxTierInSandbox,
  runningFile,
} from './linux-sandbox.js';
import type { TierReport } from './reporter.js';

const report = (root: string, entries: { file: string; pass: boolean }[]): TierReport => ({
  stats: {
    tests: entries.length,
    passes: entries.filter((e) => e.pass).length,
    failures: entries.filter((e) => !e.pass).length,
    pending: 0,
    duration: 1,
  },
  passes: entries.filter((e) => e.pass).map((e) => ({ fullTitle: `t ${e.file}`, file: join(root, e.file) })),
  failures: entries
    .filter((e) => !e.pass)
    .map((e) => ({ fullTitle: `t ${e.file}`, file: join(root, e.file), message: 'no' })),
  pending: [],
});

describe('linux tier in the sandbox: re-boot for files a stopped L1 did not end', () => {
  let root: string;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'linux-sandbox-'));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('reads the file markers off the console', () => {
    const c = `x\n${FILE_START} a.js\r\nlog\n${FILE_END} a.js\r\n${FILE_START} b.js\nnoise ${FILE_END} c.js\n`;
    expect([...endedFiles(c)]).to.deep.equal(['a.js']);
    expect(runningFile(c)).to.equal('b.js');
    expect(runningFile(`${FILE_START} a.js\n${FILE_END} a.js\n`)).to.equal(undefined);
  });

  it('drops heartbeat lines from the live output, also when a chunk splits one', () => {
    let out = '';
    const f = new HeartbeatFilter((s) => {
      out += s;
    });
    for (const c of [
      'ok 1\r\nTSVMM-ALIVE\r\nok 2\r\nTSVM',
      'M-ALI',
      'VE\r',
      '\nok 3\r\nT',
      'SVMM-ALIVED\r\n',
      'TSVMM-ALIVE\n',
    ])
      f.push(c);
    expect(out).to.equal('ok 1\r\nok 2\r\nok 3\r\nTSVMM-ALIVED\r\n');
  });

  // L1 judged frozen by its console going silent, or by its heartbeat (hosts/sandbox/heartbeat.ts) stopping
  for (const [status, said] of [
    ['silent', 'the console stayed silent for too long'],
    ['frozen', 'froze (no heartbeat for 300 s (after 40))'],
  ] as const) {
    it(`boots again for the files the frozen L1 (${status}) did not end, keeps what ended, and records the retry`, async () => {
      const calls: string[] = [];
      const write = () => {};
      const run = async (command: string, so: SandboxOptions) => {
        calls.push(command);
        mkdirSync(so.collectInto!, { recursive: true });
        if (calls.length === 1) {
          // a.js ended; b.js's result was saved but L1 froze before its end marker: b.js must run again
          writeFileSync(
            join(so.collectInto!, 'linux.json'),
            JSON.stringify(
              report(root, [
                { file: 'a.js', pass: true },
                { file: 'b.js', pass: false },
              ]),
            ),
          );
          return {
            console: `${FILE_START} a.js\n${FILE_END} a.js\n${FILE_START} b.js\n`,
            exitCode: undefined,
            status,
            report: `sandbox (L1): ${said}\nmore`,
          };
        }
        writeFileSync(
          join(so.collectInto!, 'linux.json'),
          JSON.stringify(
            report(root, [
              { file: 'b.js', pass: true },
              { file: 'c.js', pass: true },
            ]),
          ),
        );
        return {
          console: `${FILE_START} b.js\n${FILE_END} b.js\n${FILE_START} c.js\n${FILE_END} c.js\n`,
          exitCode: 0,
          report: 'ok',
        };
      };
      const { report: r, notes } = await runLinuxTierInSandbox(
        ['a.js', 'b.js', 'c.js'].map((f) => join(root, f)),
        {
          root,
          compiled: join(root, 'dist'),
          tmp: root,
          fileTimeoutS: 60,
          limitMs: 3_600_000,
          write,
          run,
        },
      );
      expect(calls).to.have.length(2);
      expect(calls[0]).to.match(/'a\.js' 'b\.js' 'c\.js'$/);
      expect(calls[1]).to.match(/--file-timeout-s' '60' 'b\.js' 'c\.js'$/);
      expect(r.passes.map((p) => p.fullTitle)).to.deep.equal(['t a.js', 't b.js', 't c.js']);
      expect(r.failures).to.deep.equal([]);
      // the freeze detector stopped L1: the hang is L1's, not b.js's
      expect(r.retried).to.deep.equal([
        { file: 'b.js', reason: `L1 stopped while it ran: sandbox (L1): ${said}`, l1Freeze: true },
      ]);
      expect(notes[0]).to.match(/boot 1 stopped before 2 file\(s\) ended \(running: b\.js\)/);
    });
  }

  it('fails the files that ended in L1 when their results did not come out, and blames a file L1 crashed on', async () => {
    let boots = 0;
    const run = async (_c: string, so: SandboxOptions) => {
      boots++;
      mkdirSync(so.collectInto!, { recursive: true });
      if (boots === 1) {
        // a.js ended but no linux.json came back; L1 then died (not a freeze) while b.js ran
        return {
          console: `${FILE_START} a.js\n${FILE_END} a.js\n${FILE_START} b.js\n`,
          exitCode: undefined,
          status: 'exited' as const,
          report: 'sandbox (L1): QEMU exited (status 1)',
        };
      }
      // b.js ended with a report that has nothing for it
      writeFileSync(join(so.collectInto!, 'linux.json'), JSON.stringify(report(root, [{ file: 'c.js', pass: true }])));
      return {
        console: `${FILE_START} b.js\n${FILE_END} b.js\n`,
        exitCode: 0,
        status: 'exited' as const,
        report: 'ok',
      };
    };
    const { report: r } = await runLinuxTierInSandbox(
      ['a.js', 'b.js'].map((f) => join(root, f)),
      {
        root,
        compiled: root,
        tmp: root,
        fileTimeoutS: 60,
        limitMs: 3_600_000,
        write: () => {},
        run,
      },
    );
    expect(r.failures.map((f) => [f.fullTitle, f.message])).to.deep.equal([
      [
        '[runner] a.js',
        'a.js: ended in L1 but its results did not come out of the sandbox (linux.json missing or unreadable)',
      ],
      ['[runner] b.js', 'b.js: ended in L1 but produced no results'],
    ]);
    expect(r.retried).to.deep.equal([
      { file: 'b.js', reason: 'L1 stopped while it ran: sandbox (L1): QEMU exited (status 1)', l1Freeze: false },
    ]);
    expect(r.stats).to.include({ passes: 0, failures: 2 });
  });

  it("excuses a file only when L1's own kernel panicked after it started (QEMU exited, a timestamped panic line)", () => {
    const panic = '[  108.762470] Kernel panic - not syncing: Fatal exception in interrupt\n';
    const during = `${FILE_START} a.js\n${FILE_END} a.js\n${FILE_START} b.js\nsome output\n${panic}`;
    expect(l1KernelCrashed(during, 'b.js', 'exited')).to.equal(true);
    // a panic before the file started is not the file's excuse
    expect(
      l1KernelCrashed(`${FILE_START} a.js\n${panic}${FILE_END} a.js\n${FILE_START} b.js\n`, 'b.js', 'exited'),
    ).to.equal(false);
    // a guest's panic echoed by a test (not at the start of a line, or no timestamp) is not L1's
    expect(l1KernelCrashed(`${FILE_START} b.js\n  guest: ${panic}`, 'b.js', 'exited')).to.equal(false);
    expect(l1KernelCrashed(`${FILE_START} b.js\nKernel panic - not syncing: VFS\n`, 'b.js', 'exited')).to.equal(false);
    // QEMU killed by the runner (timeout) did not end by L1's panic
    expect(l1KernelCrashed(during, 'b.js', 'timeout')).to.equal(false);
  });

  it("records a file running when L1's kernel panicked as the sandbox's failure, not the file's", async () => {
    let boots = 0;
    const run = async (_c: string, so: SandboxOptions) => {
      boots++;
      mkdirSync(so.collectInto!, { recursive: true });
      if (boots === 1) {
        const text =
          `${FILE_START} b.js\n[  108.670091] BUG: ENTRY_TRAMPOLINE stack guard page was hit\n` +
          '[  108.762470] Kernel panic - not syncing: Fatal exception in interrupt\n';
        return {
          console: text,
          exitCode: undefined,
          status: 'exited' as const,
          report: 'sandbox (L1): QEMU exited (status 0)',
        };
      }
      writeFileSync(join(so.collectInto!, 'linux.json'), JSON.stringify(report(root, [{ file: 'b.js', pass: true }])));
      return {
        console: `${FILE_START} b.js\n${FILE_END} b.js\n`,
        exitCode: 0,
        status: 'exited' as const,
        report: 'ok',
      };
    };
    const { report: r } = await runLinuxTierInSandbox([join(root, 'b.js')], {
      root,
      compiled: root,
      tmp: root,
      fileTimeoutS: 60,
      limitMs: 3_600_000,
      write: () => {},
      run,
    });
    expect(r.failures).to.deep.equal([]);
    expect(r.retried).to.deep.equal([
      {
        file: 'b.js',
        reason: "L1 stopped while it ran: L1's kernel panicked; sandbox (L1): QEMU exited (status 0)",
        l1Freeze: true,
      },
    ]);
  });

  it('fails the files no boot ended, naming why', async () => {
    const run = async (_c: string, so: SandboxOptions) => {
      mkdirSync(so.collectInto!, { recursive: true });
      return { console: `${FILE_START} a.js\n`, exitCode: undefined, report: 'sandbox (L1): timed out after 10 s' };
    };
    const { report: r } = await runLinuxTierInSandbox([join(root, 'a.js'), join(root, 'b.js')], {
      root,
      compiled: root,
      tmp: root,
      fileTimeoutS: 60,
      limitMs: 3_600_000,
      write: () => {},
      run,
    });
    expect(r.failures.map((f) => [f.fullTitle, f.message])).to.deep.equal([
      ['[sandbox] a.js', 'did not end: sandbox (L1): timed out after 10 s'],
      ['[sandbox] b.js', 'did not end: sandbox (L1): timed out after 10 s'],
    ]);
    expect(r.stats).to.include({ passes: 0, failures: 2 });
  });
});
