import { expect } from 'chai';
import { SharedExitStats } from './stats.js';
import { STAT_KINDS } from './protocol.js';

describe('SharedExitStats', () => {
  it('sums every vCPU per exit kind, skipping kinds never seen, and formats a table', () => {
    const s = new SharedExitStats();
    const a = new Float64Array(s.add()),
      b = new Float64Array(s.add());
    const io = STAT_KINDS.indexOf('io'),
      hlt = STAT_KINDS.indexOf('hlt');
    a[io * 2] = 3;
    a[io * 2 + 1] = 3000;
    b[io * 2] = 1;
    b[io * 2 + 1] = 1000;
    b[hlt * 2] = 1;
    b[hlt * 2 + 1] = 50;
    a[STAT_KINDS.length * 2] = 2e6;
    expect(s.byKind).to.deep.equal({ io: { count: 4, totalNs: 4000 }, hlt: { count: 1, totalNs: 50 } });
    expect(s.guestNs).to.equal(2e6);
    const t = s.format();
    expect(t).to.match(/^io\s+4\s+0\.00 ms\s+1\.00 µs\/exit$/m);
    expect(t).to.include('in guest: 2.00 ms');
  });

  it('counts activity per vCPU from every exit kind but kicks (intr)', () => {
    const s = new SharedExitStats();
    const a = new Float64Array(s.add()),
      b = new Float64Array(s.add());
    const at = (k: (typeof STAT_KINDS)[number]) => STAT_KINDS.indexOf(k) * 2;
    a[at('io')] = 2;
    a[at('pio-fast-ring')] = 5;
    a[at('intr')] = 7;
    b[at('intr')] = 3;
    a[at('io') + 1] = 1e9; // nanoseconds are not counts
    expect(s.activity()).to.deep.equal([7, 0]);
    b[at('mmio-fast-read')] = 1;
    expect(s.activity()).to.deep.equal([7, 1]);
  });
});
