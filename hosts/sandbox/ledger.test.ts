import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { qemuArgv, type BootResult } from './boot.js';
import {
  appendBoot,
  bootRecord,
  configLabel,
  l1ConfigOf,
  lastConsoleLine,
  ledgerPath,
  outcomeOf,
  readLedger,
} from './ledger.js';

/** A boot result as bootVm returns it, for L1 with the sandbox's command line. */
function boot(over: Partial<BootResult> = {}): BootResult {
  return {
    status: 'exited',
    qemuExitCode: 0,
    initReached: true,
    exitCode: 0,
    console: 'TSVMM-INIT-OK\nhello\n',
    stderr: '',
    durationMs: 123_456,
    argv: [
      '/nonexistent/qemu-system-x86_64', // answers no --version: no emulator in the record
      ...qemuArgv({
        accel: 'tcg',
        kernel: '/k',
        timeoutMs: 1,
        cpus: 2,
        memoryMiB: 3584,
        sharedMemory: true,
        tcgThread: 'single',
        append: 'console=ttyS0 panic=-1 quiet tsc_early_khz=2000000 tsc=reliable kvm_amd.npt=0',
      }),
    ],
    ...over,
  };
}

describe('sandbox L1 boot ledger', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ledger-test-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("records the emulating QEMU's version when its binary answers --version", () => {
    const fake = join(dir, 'qemu');
    writeFileSync(fake, '#!/bin/sh\necho "QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2)"\n', { mode: 0o755 });
    const c = l1ConfigOf([fake, ...boot().argv.slice(1)]);
    expect(c.emulator).to.equal('10.0.2');
    expect(configLabel(c)).to.match(/^qemu 10\.0\.2 tcg,thread=single max smp2/);
  });

  it("reads L1's configuration from its QEMU command line, without the sandbox's fixed kernel words", () => {
    const c = l1ConfigOf(boot().argv);
    expect(c).to.deep.equal({
      accel: 'tcg,thread=single',
      cpu: 'max',
      smp: '2',
      memory: '3584',
      machine: 'microvm,x-option-roms=off,rtc=on',
      append: 'kvm_amd.npt=0',
    });
    expect(configLabel(c, 'iommu-nvme')).to.equal('tcg,thread=single max smp2 +kvm_amd.npt=0 [iommu-nvme]');
  });

  it('names each way a boot ends; a panic on the console of a boot that ended by itself is a panic', () => {
    expect(outcomeOf(boot())).to.equal('finished');
    expect(outcomeOf(boot({ exitCode: 3 }))).to.equal('finished');
    expect(outcomeOf(boot({ status: 'frozen', exitCode: undefined }))).to.equal('frozen');
    expect(outcomeOf(boot({ status: 'silent', exitCode: undefined }))).to.equal('silent');
    expect(outcomeOf(boot({ status: 'timeout', exitCode: undefined }))).to.equal('timeout');
    expect(outcomeOf(boot({ status: 'aborted', exitCode: undefined }))).to.equal('aborted');
    expect(outcomeOf(boot({ status: 'spawn-failed', exitCode: undefined }))).to.equal('failed');
    expect(outcomeOf(boot({ exitCode: undefined, console: 'x\n' }))).to.equal('failed');
    const panic = 'x\n[  108.762470] Kernel panic - not syncing: Fatal exception in interrupt\n';
    expect(outcomeOf(boot({ exitCode: undefined, console: panic }))).to.equal('panicked');
  });

  it('a record says what ran when L1 stopped (the caller’s reading, else the last console line)', () => {
    const ok = bootRecord(boot(), 'script exited with 0', '', { source: 'tier' });
    expect(ok).to.include({ source: 'tier', outcome: 'finished', seconds: 123.5, exitCode: 0, variant: '' });
    expect(ok).to.not.have.property('running');
    const froze = boot({ status: 'frozen', exitCode: undefined, console: 'FILE-START a.js\nsome output\n\n' });
    const r1 = bootRecord(froze, 'sandbox (L1): froze (no heartbeat for 90 s (after 3))\n  more');
    expect(r1).to.include({ source: 'sandbox', outcome: 'frozen', running: 'some output' });
    expect(r1.reason).to.equal('sandbox (L1): froze (no heartbeat for 90 s (after 3))');
    const r2 = bootRecord(froze, 'r', '', { running: (c) => (c.includes('a.js') ? 'a.js' : undefined) });
    expect(r2.running).to.equal('a.js');
    expect(lastConsoleLine('')).to.equal(undefined);
    expect(lastConsoleLine('a\r\n  b  \r\n\r\n')).to.equal('b');
  });

  it('appends one line per boot and reads them back, skipping lines that are not records', () => {
    const f = join(dir, 'sub', 'l1-boots.jsonl');
    expect(appendBoot(bootRecord(boot(), 'ok'), f)).to.equal(undefined);
    expect(appendBoot(bootRecord(boot({ status: 'silent', exitCode: undefined }), 'silent'), f)).to.equal(undefined);
    appendFileSync(f, '{"torn": \n');
    const { records, skipped } = readLedger(f);
    expect(records.map((r) => r.outcome)).to.deep.equal(['finished', 'silent']);
    expect(skipped).to.equal(1);
    expect(readFileSync(f, 'utf8').split('\n').filter(Boolean)).to.have.length(3);
    expect(readLedger(join(dir, 'none.jsonl'))).to.deep.equal({ records: [], skipped: 0 });
  });

  it('a ledger that cannot be written is a message, never an error that stops the run', () => {
    const blocker = join(dir, 'file');
    writeFileSync(blocker, '');
    const msg = appendBoot(bootRecord(boot(), 'ok'), join(blocker, 'l1-boots.jsonl'));
    expect(msg).to.match(/the L1 boot ledger .* could not be written/);
  });

  it('lives under the cache folder unless TSVMM_L1_LEDGER names a file or turns it off', () => {
    expect(ledgerPath({ HOME: '/h', XDG_CACHE_HOME: '/c' })).to.equal('/c/tsvmm/l1-boots.jsonl');
    expect(ledgerPath({ TSVMM_L1_LEDGER: '/x/y.jsonl' })).to.equal('/x/y.jsonl');
    expect(ledgerPath({ TSVMM_L1_LEDGER: 'off' })).to.equal(undefined);
  });
});
