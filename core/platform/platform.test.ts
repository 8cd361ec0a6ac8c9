import { expect } from 'chai';
import { CmdlineBuilder } from './cmdline-builder.js';
import { PlatformError } from './errors.js';

describe('platform: kernel command line', () => {
  it('CmdlineBuilder appends fragments and enforces the size limit', () => {
    const c = new CmdlineBuilder('console=ttyS0', 32);
    c.append('  quiet ');
    expect(c.toString()).to.equal('console=ttyS0 quiet');
    expect(() => c.append('x'.repeat(20))).to.throw(PlatformError);
    expect(() => c.append('a\nb')).to.throw(PlatformError);
    expect(c.toString()).to.equal('console=ttyS0 quiet');
  });
});
