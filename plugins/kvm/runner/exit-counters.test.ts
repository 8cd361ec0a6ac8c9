import { expect } from 'chai';
import { exitCounters } from './exit-counters.js';

describe('kvm exit counters', () => {
  it('sums the exits of every runner by kind, with their handling time', () => {
    const a = { byKind: { io: { count: 3, totalNs: 1500.4 }, hlt: { count: 1, totalNs: 10 } } };
    const b = { byKind: { io: { count: 2, totalNs: 500 } } };
    expect(exitCounters([a, b])).to.deep.equal({
      'exits.io': 5,
      'exitNs.io': 2000,
      'exits.hlt': 1,
      'exitNs.hlt': 10,
    });
    expect(exitCounters([])).to.deep.equal({});
  });
});
