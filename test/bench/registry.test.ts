import { expect } from 'chai';
import { parseBenchArgs } from './args.js';
import { BENCH_NAMES, GUEST_BENCHES } from './registry.js';

describe('bench registry', () => {
  it('gives every registered benchmark its own --only names', () => {
    expect(new Set(BENCH_NAMES).size).to.equal(BENCH_NAMES.length);
    for (const b of GUEST_BENCHES) expect(b.names.length).to.be.greaterThan(0);
    expect(BENCH_NAMES[0]).to.equal('exit');
  });

  it('accepts each registered name in --only and refuses an unknown one', () => {
    for (const n of BENCH_NAMES) expect(parseBenchArgs(['--only', n]).only).to.deep.equal([n]);
    expect(parseBenchArgs([]).only).to.deep.equal([...BENCH_NAMES]);
    const err = process.stderr.write;
    process.stderr.write = () => true;
    try {
      expect(() => parseBenchArgs(['--only', 'boot,nosuch'])).to.throw(/unknown benchmark nosuch/);
    } finally {
      process.stderr.write = err;
    }
  });
});
