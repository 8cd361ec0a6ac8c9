/**
 * endedWithin and stallEvidence against a stand-in for `bin/vmm.js run`: a Node child that prints a console line,
 * then falls silent, and on SIGTERM logs a statistics line and exits with 143 as the VMM does.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { endedWithin, type VmmEnd, type VmmProcess } from './guest-vm.js';

/** A child printing `lines` console lines 100 ms apart, then silent (or ending with 0 when `exits`). */
function standIn(lines: number, exits = false): VmmProcess {
  const code = `
    let n = 0;
    const t = setInterval(() => {
      if (n++ < ${lines}) return void process.stdout.write('FLUSHED raw ' + n + ' 0\\n');
      clearInterval(t);
      if (${exits}) process.exit(0);
      setInterval(() => {}, 1000);
    }, 100);
    process.on('SIGTERM', () => {
      process.stderr.write('{"msg":"serial: stopped","thrPending":true}\\n');
      process.exit(143);
    });`;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let text = '';
  child.stdout.on('data', (d: Buffer) => ((stdout += d), (text += d)));
  child.stderr.on('data', (d: Buffer) => (text += d));
  const t0 = Date.now();
  const ended = new Promise<VmmEnd>((resolve) =>
    child.on('close', (c, signal) => resolve({ code: c, signal, text, stdout, seconds: (Date.now() - t0) / 1000 })),
  );
  return { child, ended, diagnose: () => Promise.resolve('(node report)\n') };
}

describe('endedWithin: a stalled VMM is stopped with its evidence', function () {
  this.timeout(30_000);

  it('a console silent for silentMs stops the VMM: threads, its report and what it logs on SIGTERM', async () => {
    const r = await endedWithin(standIn(3), 60_000, { silentMs: 1_500 });
    expect(r.code).to.equal(143);
    expect(r.stdout).to.include('FLUSHED raw 3 0');
    expect(r.evidence).to.match(/^stopped after 1\.5 s of silence on the console\n/);
    // the second sample is diagnose()'s own (spawnVmm's starts with the threads)
    expect(r.evidence).to.match(/threads 3 s before the report \(compare the CPU ticks\):\nwatchdog: threads of \d+:/);
    expect(r.evidence).to.include('(node report)');
    expect(r.evidence).to.match(/the VMM's log after SIGTERM:\n\{"msg":"serial: stopped","thrPending":true\}/);
  });

  it('the deadline stops a VMM that keeps printing', async () => {
    const r = await endedWithin(standIn(1_000_000), 2_000, { silentMs: 60_000 });
    expect(r.code).to.equal(143);
    expect(r.evidence).to.match(/^stopped at the 2 s deadline\n/);
  });

  it('a VMM that ends by itself has no evidence', async () => {
    const r = await endedWithin(standIn(2, true), 60_000, { silentMs: 10_000 });
    expect(r.code).to.equal(0);
    expect(r.evidence).to.equal('');
  });
});
