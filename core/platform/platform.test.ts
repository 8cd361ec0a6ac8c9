import { expect } from 'chai';
import { GsiAllocator } from './gsi-allocator.js';
import { MmioWindowAllocator } from './mmio-window-allocator.js';
import { CmdlineBuilder } from './cmdline-builder.js';
import { PlatformError } from './errors.js';
import type { PlatformLayout } from './layout.js';

describe('platform resources', () => {
  it('GsiAllocator hands out lines 5..23 skipping the RTC and claimed ones', () => {
    const a = new GsiAllocator(5, 23, [8]);
    a.claim(6, 'floppy');
    expect(a.allocate()).to.equal(5);
    expect(a.allocate()).to.equal(7);
    expect(a.allocate()).to.equal(9); // 8 is the RTC
    expect(() => a.claim(7, 'serial')).to.throw(PlatformError, /already used/);
    const all = [];
    try {
      for (;;) all.push(a.allocate());
    } catch (e) {
      expect(e).to.be.instanceOf(PlatformError);
    }
    expect(all.at(-1)).to.equal(23);
  });

  it('MmioWindowAllocator aligns and refuses to run past the end', () => {
    const m = new MmioWindowAllocator(0x1000n, 0x10000n);
    expect(m.allocate(0x200n, 0x1000n, 'a').start.value).to.equal(0x1000n);
    expect(m.allocate(0x200n, 0x1000n, 'b').start.value).to.equal(0x2000n);
    expect(() => m.allocate(0x10000n, 0x1000n, 'big')).to.throw(PlatformError, /big/);
    expect(() => m.allocate(0x10n, 3n, 'odd')).to.throw(PlatformError);
  });

  it('CmdlineBuilder appends fragments and enforces the size limit', () => {
    const c = new CmdlineBuilder('console=ttyS0', 32);
    c.append('  quiet ');
    expect(c.toString()).to.equal('console=ttyS0 quiet');
    expect(() => c.append('x'.repeat(20))).to.throw(PlatformError);
    expect(() => c.append('a\nb')).to.throw(PlatformError);
    expect(c.toString()).to.equal('console=ttyS0 quiet');
  });

  it('the allocators take their ranges from a PlatformLayout', () => {
    const layout: PlatformLayout = {
      arch: 'test',
      deviceIrqs: { first: 10, last: 12, reserved: [11] },
      legacyIrqs: {},
      mmio32: { start: 0x4000n, end: 0x6000n },
      fixed: {},
    };
    const irqs = GsiAllocator.fromLayout(layout);
    expect([irqs.allocate(), irqs.allocate()]).to.deep.equal([10, 12]);
    expect(() => irqs.allocate()).to.throw(PlatformError, /10\.\.12/);
    const mmio = MmioWindowAllocator.fromLayout(layout);
    expect(mmio.allocate(0x1000n, 0x1000n, 'a').start.value).to.equal(0x4000n);
    expect(mmio.allocate(0x1000n, 0x1000n, 'b').start.value).to.equal(0x5000n);
    expect(() => mmio.allocate(0x1000n, 0x1000n, 'c')).to.throw(PlatformError, /below 0x6000/);
  });
});
