import { expect } from 'chai';
import { skipUnlessCi } from './environment.js';

describe('skipUnlessCi (test/setup/environment)', () => {
  it('throws under CI=true, naming what is missing', () => {
    const ctx = {
      skip: () => {
        throw new Error('skipped');
      },
    } as unknown as Mocha.Context;
    expect(() => skipUnlessCi(ctx, 'qemu-img is not installed', { CI: 'true' })).to.throw(
      /^qemu-img is not installed; under CI=true a missing tool is a failure/,
    );
  });

  it('skips the test otherwise', () => {
    let skipped = 0;
    const ctx = {
      skip: () => {
        skipped++;
        throw new Error('pending');
      },
    } as unknown as Mocha.Context;
    expect(() => skipUnlessCi(ctx, 'no lz4', { CI: '' })).to.throw('pending');
    expect(skipped).to.equal(1);
  });
});
