import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  benchBoots,
  binomialInterval,
  chanceOfNoFreeze,
  freezeRate,
  outcomeOfReason,
  ratesBy,
  runStops,
  studyBoots,
  tierBoots,
  DEFAULT_LABEL,
} from './freeze-evidence.js';
import { scanLogs } from './freeze-ledger.js';

const SILENT = 'sandbox (L1): the console stayed silent for too long (a frozen guest?); killed after 330.7 s';
/** A linux tier run whose first L1 went silent while qcow ran; the second boot ended every file. */
const TIER_REBOOT = `Running the linux tier inside the sandbox (L1).
TSVMM-LINUX-FILE-START dist/plugins/qcow/qcow.linux.test.js

linux tier: booting a fresh sandbox for 7 file(s) the last one did not end
TSVMM-LINUX-FILE-START dist/plugins/qcow/qcow.linux.test.js
TSVMM-LINUX-FILE-END dist/plugins/qcow/qcow.linux.test.js
linux: 30 passed, 0 failed, 0 skipped, 1 retried (728.2 s) - sandbox boot 1 stopped before 7 file(s) ended (running: dist/plugins/qcow/qcow.linux.test.js): ${SILENT}
`;
/** A clean run, then one whose L1 panicked and whose second boot was cut off (no summary). */
const TIER_PANIC = `Running the linux tier inside the sandbox (L1).
linux: 2 passed, 0 failed, 0 skipped, 0 retried (100.0 s)
Running the linux tier inside the sandbox (L1).
TSVMM-LINUX-FILE-START b.js
[  108.762470] Kernel panic - not syncing: Fatal exception in interrupt
linux tier: booting a fresh sandbox for 1 file(s) the last one did not end
`;

describe('L1 freeze evidence from logs', () => {
  it('counts a tier run’s boots: the stopped one with its reason and file, the re-boot finished with the rest', () => {
    const b = tierBoots(TIER_REBOOT, 'x.log', '2026-12-06');
    expect(b).to.have.length(2);
    expect(b[0]).to.deep.include({
      outcome: 'silent',
      seconds: 330.7,
      running: 'dist/plugins/qcow/qcow.linux.test.js',
      reason: SILENT,
      label: DEFAULT_LABEL,
      source: 'tier',
    });
    expect(b[1]).to.deep.include({ outcome: 'finished' });
    expect(b[1]!.seconds).to.be.closeTo(728.2 - 330.7, 0.01);
  });

  it('a run cut off before its summary leaves boots of unknown end; a clean run is one finished boot', () => {
    const b = tierBoots(TIER_PANIC, 'y.log', '2026-12-07');
    expect(b.map((x) => x.outcome)).to.deep.equal(['finished', 'unknown', 'unknown']);
    expect(b[0]!.seconds).to.equal(100);
  });

  it('names stops by their reason; a silent exit with a panic on its console is a panic', () => {
    expect(outcomeOfReason(SILENT)).to.equal('silent');
    expect(outcomeOfReason('sandbox (L1): froze (no heartbeat for 300 s (after 4)); QEMU killed after 400 s')).to.equal(
      'frozen',
    );
    expect(outcomeOfReason('sandbox (L1): timed out after 1200.3 s: init ran but the script did not finish')).to.equal(
      'timeout',
    );
    const exited = 'sandbox (L1): QEMU exited (status 0) after 109.5 s before the script reported its exit status';
    expect(outcomeOfReason(exited)).to.equal('failed');
    expect(outcomeOfReason(exited, '[  108.762470] Kernel panic - not syncing: x')).to.equal('panicked');
  });

  it('reads the bench’s sandbox boots, the study’s JSON lines and `vmm run --sandbox` stops', () => {
    const bench = `bench: starting the sandbox for boot,start (QEMU TCG L1; a while)
[sandbox] bench: boot sandbox: 100 s
[sandbox] bench: start sandbox: 50 s
bench: starting the sandbox for vfio (QEMU TCG L1; a while)
problem: the sandbox run produced no results (${SILENT})
`;
    const b = benchBoots(bench, 'b.log', '2026-12-07');
    expect(b.map((x) => [x.outcome, x.seconds])).to.deep.equal([
      ['finished', 150],
      ['silent', 330.7],
    ]);
    const study = studyBoots(
      '{"boot":1,"status":"exited","seconds":188,"exitCode":0,"append":""}\n' +
        '{"boot":2,"status":"frozen","seconds":200,"append":"kvm_amd.npt=0"}\nsummary: 2 L1 boots\n',
      's.jsonl',
      '2026-12-07',
    );
    expect(study.map((x) => [x.outcome, x.label])).to.deep.equal([
      ['finished', DEFAULT_LABEL],
      ['frozen', `${DEFAULT_LABEL} +kvm_amd.npt=0`],
    ]);
    const stops = runStops('vmm: sandbox (L1) froze (no heartbeat) after 400 s; starting the VM again\n', 'r', 'd');
    expect(stops.map((x) => x.outcome)).to.deep.equal(['frozen']);
  });

  it('rates: freezes per boot with an exact 95 % interval, per L1 hour, unknown ends apart', () => {
    const r = freezeRate([...tierBoots(TIER_REBOOT, 'x', 'd'), ...tierBoots(TIER_PANIC, 'y', 'd')]);
    expect(r).to.deep.include({ boots: 3, freezes: 1, unknown: 2 });
    expect(r.perBoot).to.equal(0.333);
    expect(r.perHour).to.be.closeTo(1 / (828.2 / 3600), 0.01);
    // Clopper-Pearson, as tabulated: 0/10 -> [0, 0.308], 1/20 -> [0.001, 0.249], 5/102 -> [0.016, 0.111]
    expect(binomialInterval(0, 10)).to.deep.equal([0, 0.308]);
    expect(binomialInterval(1, 20)).to.deep.equal([0.001, 0.249]);
    expect(binomialInterval(5, 102)).to.deep.equal([0.016, 0.111]);
    expect(chanceOfNoFreeze(0.05, 20)).to.equal(0.358);
    expect(ratesBy(tierBoots(TIER_REBOOT, 'x', 'd'), (b) => b.outcome).map((g) => g.key)).to.deep.equal([
      'finished',
      'silent',
    ]);
  });

  it('scans a folder of logs and counts a run tee’d into two files once', () => {
    const dir = mkdtempSync(join(tmpdir(), 'freeze-evidence-'));
    try {
      writeFileSync(join(dir, 'a.log'), TIER_REBOOT);
      writeFileSync(join(dir, 'a-copy.log'), TIER_REBOOT);
      writeFileSync(join(dir, 'unit.log'), 'mocha: 12 passing\n');
      writeFileSync(join(dir, 'x-study1.jsonl'), '{"boot":1,"status":"exited","seconds":188,"exitCode":0}\n');
      const s = scanLogs(dir);
      expect(s.boots.map((b) => b.outcome)).to.deep.equal(['silent', 'finished', 'finished']);
      expect(s.files).to.equal(2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
