import { expect } from 'chai';
import { propertySeed } from './seed.js';

describe('property-test seed (test/setup)', () => {
  it('replays the seed TSVMM_SEED names and refuses one that is not an integer', () => {
    expect(propertySeed({ TSVMM_SEED: '1234567' })).to.equal(1234567);
    expect(propertySeed({ TSVMM_SEED: '-5' })).to.equal(-5);
    expect(() => propertySeed({ TSVMM_SEED: 'abc' })).to.throw(/TSVMM_SEED=abc is not an integer/);
  });

  it('draws a fresh seed per run when none is given', () => {
    const seeds = new Set(Array.from({ length: 20 }, () => propertySeed({})));
    expect(seeds.size).to.be.greaterThan(1);
    for (const s of seeds) expect(Number.isInteger(s) && s >= 0 && s < 0x7fffffff).to.equal(true);
  });
});
