import { expect } from 'chai';
import { parseFirstRun, splitCommand, startupSummary } from './first-run.js';

const STDERR = [
  '{"level":30,"msg":"kernel loaded"}',
  'vmm: startup timings (ms since process start, +delta):',
  '    650.8 ms  +   650.8  config loaded',
  '    670.9 ms  +    20.1  plugins discovered (22 in the repository)',
  '   1104.1 ms  +    33.1  machine built',
  '   1236.6 ms  +   132.5  kernel read (53243444 bytes)',
  '   1310.1 ms  +    67.6  started',
  'vmm: first KVM_RUN (vCPU 0): 1290.5 ms since process start, epoch 1000001300.5',
  '',
].join('\n');

describe('bench first-run: a VMM start-up read from its VMM_TIMINGS lines', () => {
  it('spawn to first KVM_RUN from the wall clocks, spawn to process start, and each mark by its step', () => {
    const r = parseFirstRun(STDERR, 1000000000);
    expect(r.firstRunMs).to.be.closeTo(1300.5, 1e-6);
    expect(r.execMs).to.be.closeTo(10, 1e-6);
    expect(r.marks).to.include({ 'config loaded': 650.8, 'plugins discovered': 670.9, 'kernel read': 1236.6 });
    expect(parseFirstRun('no marks\n', 0)).to.deep.equal({ marks: {} });
  });

  it('sums it up in a line for the bench log; nothing when there are no marks', () => {
    expect(startupSummary(STDERR, 1000000000)).to.equal(
      'spawn to process start 10 ms; ms since process start: config loaded 651, plugins discovered 671, ' +
        'machine built 1104, kernel read 1237, started 1310, first KVM_RUN 1291',
    );
    expect(startupSummary('{"level":30}\n', 0)).to.equal(undefined);
  });

  it('splits leading NAME=value words off as the environment', () => {
    expect(splitCommand('VMM_BUNDLE=0 A=b=c node bin/vmm.js run')).to.deep.equal({
      env: { VMM_BUNDLE: '0', A: 'b=c' },
      argv: ['node', 'bin/vmm.js', 'run'],
    });
  });
});
