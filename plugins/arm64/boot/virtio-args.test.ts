import { expect } from 'chai';
import { splitVirtioMmioArgs } from './virtio-args.js';

describe('arm64: virtio-mmio command line words', () => {
  it('takes them out of the command line, keeping the rest in order', () => {
    const r = splitVirtioMmioArgs(
      'console=ttyS0  virtio_mmio.device=4K@0xa000000:2 quiet virtio_mmio.device=512@167776256:3 panic=1',
    );
    expect(r.bootargs).to.equal('console=ttyS0 quiet panic=1');
    expect(r.devices).to.deep.equal([
      { size: 4096n, base: 0xa000000n, gsi: 2 },
      { size: 512n, base: 167776256n, gsi: 3 },
    ]);
    expect(splitVirtioMmioArgs('').devices).to.deep.equal([]);
  });
  it('refuses a word it cannot read', () => {
    expect(() => splitVirtioMmioArgs('virtio_mmio.device=4K@zz:1')).to.throw(/cannot read the command line word/);
  });
});
