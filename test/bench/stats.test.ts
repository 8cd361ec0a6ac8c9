import { expect } from 'chai';
import { fmt, pairedRatios, summarize } from './stats.js';

describe('bench stats', () => {
  it('summarises odd and even counts', () => {
    expect(summarize([3, 1, 2])).to.include({ min: 1, median: 2, max: 3 });
    expect(summarize([4, 1, 3, 2])).to.include({ min: 1, median: 2.5, max: 4 });
    expect(summarize([])).to.equal(undefined);
    expect(summarize([NaN])).to.equal(undefined);
  });
  it('pairs ratios repeat by repeat and skips unusable pairs', () => {
    expect(pairedRatios([2, 3, 4], [1, 0, 2])).to.deep.equal([2, 2]);
    expect(pairedRatios([1], [2, 3])).to.deep.equal([0.5]);
  });
  it('formats figures', () => {
    expect(fmt(1234.6)).to.equal('1235');
    expect(fmt(0.04567)).to.equal('0.046');
    expect(fmt(undefined)).to.equal('-');
  });
});
