import { expect } from 'chai';
import { tickGap } from './migration-ticks.js';

describe('bench migration: the guest-visible downtime from console ticks', () => {
  const every = (from: number, n: number, ms: number): number[] => Array.from({ length: n }, (_, i) => from + i * ms);

  it('is the switch-over gap less the usual tick spacing', () => {
    const src = every(1000, 20, 50); // last tick at 1950
    const g = tickGap(src, every(2950 + 50, 5, 50)); // first destination tick 1050 ms after it
    expect(g).to.deep.include({ gapMs: 1050, normalMs: 50, downtimeMs: 1000, sourceStallMs: 0 });
  });

  it('reports a stall between two source ticks (a pause before the switch-over) apart from the downtime', () => {
    const src = [...every(0, 10, 20), ...every(600, 10, 20)]; // 420 ms late once
    const g = tickGap(src, [900]);
    expect(g?.sourceStallMs).to.equal(400);
    expect(g?.downtimeMs).to.equal(900 - 780 - 20);
  });

  it('never goes below zero, and has no figure without ticks on both sides or with no switch-over', () => {
    expect(tickGap(every(0, 5, 50), [210])?.downtimeMs).to.equal(0);
    expect(tickGap([5], [100])).to.equal(undefined);
    expect(tickGap(every(0, 5, 50), [])).to.equal(undefined);
    expect(tickGap(every(0, 5, 50), [100])).to.equal(undefined); // the destination printed while the source did
  });
});
