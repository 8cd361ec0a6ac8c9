import { expect } from 'chai';
import { checkPlatformLayout } from '../../../core/platform/layout.js';
import { PlatformResources } from '../../../core/platform/platform-resources.js';
import { x86IrqchipRoutes, x86PlatformLayout } from './resource-layout.js';

const GIB = 1n << 30n;

describe('x86: PlatformLayout', () => {
  it('puts the 64-bit MMIO window above the end of RAM, on a GiB boundary, never below 4 GiB', () => {
    const start = (mem: bigint) => x86PlatformLayout(mem).spaces.mmio64.range.start;
    expect(start(512n << 20n)).to.equal(4n * GIB);
    expect(start(3n * GIB)).to.equal(4n * GIB);
    expect(start(4n * GIB), '1 GiB of RAM relocated to [4 GiB, 5 GiB)').to.equal(5n * GIB);
    expect(start(4n * GIB + 4096n)).to.equal(6n * GIB);
    for (const mem of [64n << 20n, 3n * GIB + 4096n, 17n * GIB]) {
      const l = checkPlatformLayout(x86PlatformLayout(mem));
      const ramEnd = mem <= 3n * GIB ? mem : 4n * GIB + (mem - 3n * GIB);
      expect(l.spaces.mmio64.alloc.start >= ramEnd, `${mem}`).to.equal(true);
    }
  });

  it('keeps the machine numbers: windows from 0xd0001000, lines 5..23 without 8, COM1 on 4, MSI GSIs from 24', () => {
    const r = new PlatformResources(x86PlatformLayout(256n << 20n));
    expect(r.allocate('mmio32', { owner: 'a', size: 0x1000n, align: 0x1000n }).start).to.equal(0xd000_1000n);
    expect([5, 6, 7, 9].map(() => r.allocate('irq', { owner: 'v' }).number)).to.deep.equal([5, 6, 7, 9]);
    expect([r.legacyIrq('com1'), r.legacyIrq('com2'), r.legacyIrq('keyboard')]).to.deep.equal([4, 3, 1]);
    expect(r.allocate('msi', { owner: 'm' }).number).to.equal(24);
  });

  it("lists KVM's default irqchip routes: IOAPIC pins 0..23, PIC pins for GSIs 0..15", () => {
    const routes = x86IrqchipRoutes();
    expect(routes).to.have.length(40);
    expect(routes.filter((r) => r.gsi === 10)).to.deep.equal([
      { gsi: 10, kind: 'irqchip', chip: 2, pin: 10 },
      { gsi: 10, kind: 'irqchip', chip: 1, pin: 2 },
    ]);
    expect(routes.filter((r) => r.gsi === 20)).to.deep.equal([{ gsi: 20, kind: 'irqchip', chip: 2, pin: 20 }]);
  });
});
