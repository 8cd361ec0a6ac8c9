import type { GsiRoute } from '../hypervisor/hypervisor.js';
import type { PlatformLayout } from '../platform/layout.js';

/**
 * A PlatformLayout for tests: PC-like numbers (a 24-pin interrupt controller with lines 5..23
 * allocatable and 8 kept, COM1 on 4, MMIO windows from 0xd0001000 and above 64 GiB, MSI GSIs
 * from 24), so test expectations read like the machine's. Not the arch plugin's layout.
 */
export function testPlatformLayout(): PlatformLayout {
  const pins = 24;
  const irqchipRoutes: GsiRoute[] = [];
  for (let pin = 0; pin < pins; pin++) irqchipRoutes.push({ gsi: pin, kind: 'irqchip', chip: 2, pin });
  return {
    arch: 'test',
    spaces: {
      pio: { range: { start: 0n, end: 0x1_0000n }, alloc: { start: 0x1000n, end: 0x1_0000n } },
      mmio32: {
        range: { start: 0xc000_0000n, end: 0xfec0_0000n },
        alloc: { start: 0xd000_1000n, end: 0xfec0_0000n },
      },
      mmio64: { range: { start: 64n << 30n, end: 1n << 40n }, alloc: { start: 64n << 30n, end: 1n << 40n } },
      irq: { range: { start: 0n, end: BigInt(pins) }, alloc: { start: 5n, end: BigInt(pins) } },
      msi: { range: { start: BigInt(pins), end: 4096n }, alloc: { start: BigInt(pins), end: 4096n } },
    },
    legacyIrqs: {
      com1: 4,
      com2: 3,
      com3: 4,
      com4: 3,
      keyboard: 1,
      rtc: 8,
      'pci-inta': 5,
      'pci-intb': 6,
      'pci-intc': 10,
      'pci-intd': 11,
    },
    irqchipRoutes,
    reserved: [{ space: 'irq', start: 8n, size: 1n, owner: 'reserved' }],
    fixed: { 'boot-timer': { start: 0xd000_0000n, size: 0x1000n } },
  };
}
