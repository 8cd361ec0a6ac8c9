import { expect } from 'chai';
import { copyEstimateMs } from './converge.js';

describe('migration: pricing the stop-and-copy from the last pre-copy round (converge.ts)', () => {
  it("prices the dirty set at the last round's ms per page looked at, zero pages included", () => {
    // a guest rewriting 16384 zero pages: the round went through them in 40 ms, though it sent no page data
    expect(copyEstimateMs({ round: 2, pages: 16384, ms: 40 }, 16384)).to.equal(40);
    expect(copyEstimateMs({ round: 5, pages: 1000, ms: 100 }, 250)).to.equal(25);
  });

  it('prices nothing from round 1 (all of memory, zero pages skipped); after an empty round only an empty set', () => {
    expect(copyEstimateMs({ round: 1, pages: 65536, ms: 200 }, 10)).to.equal(Infinity);
    expect(copyEstimateMs({ round: 3, pages: 0, ms: 1 }, 10)).to.equal(Infinity);
    expect(copyEstimateMs({ round: 3, pages: 0, ms: 1 }, 0)).to.equal(0);
  });
});
