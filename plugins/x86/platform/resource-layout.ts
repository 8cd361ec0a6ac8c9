import type { GsiRoute } from '../../../core/hypervisor/hypervisor.js';
import type { PlatformLayout } from '../../../core/platform/layout.js';
import { X86Layout } from '../layout.js';

/** KVM's irqchip ids: the two 8259 PICs and the IOAPIC. */
const PIC_MASTER = 0;
const PIC_SLAVE = 1;
const IOAPIC = 2;
/** IOAPIC pins: ISA IRQs 0..15 and PCI lines 16..23. */
const IOAPIC_PINS = X86Layout.IRQ_ALLOC_END + 1;
/** KVM's x86 limit on GSI routing entries (KVM_MAX_IRQ_ROUTES); MSI GSIs stay below it. */
const MAX_GSI = 4096n;
/** The guest-physical address width the 64-bit window stays within (1 TiB: 40 bits, QEMU's TCG default). */
const PHYS_END = 1n << 40n;
const GIB = 1n << 30n;

/**
 * The routes KVM's in-kernel irqchip starts with (its default table): GSI n reaches IOAPIC pin n,
 * and for n < 16 also pin n % 8 of the master (n < 8) or slave PIC.
 */
export function x86IrqchipRoutes(): GsiRoute[] {
  const routes: GsiRoute[] = [];
  for (let gsi = 0; gsi < IOAPIC_PINS; gsi++) {
    routes.push({ gsi, kind: 'irqchip', chip: IOAPIC, pin: gsi });
    if (gsi < 16) routes.push({ gsi, kind: 'irqchip', chip: gsi < 8 ? PIC_MASTER : PIC_SLAVE, pin: gsi % 8 });
  }
  return routes;
}

/**
 * The x86 PlatformLayout for a guest with `memory` bytes of RAM: ports (allocations from 0x1000),
 * the 32-bit hole from MMIO_ALLOC_START (below it: the boot timer page), a 64-bit window from the
 * first GiB boundary above RAM (and above 4 GiB) up to 1 TiB, IOAPIC lines (5..23 allocatable, 8
 * kept for the CMOS RTC) and MSI GSIs from 24.
 */
export function x86PlatformLayout(memory: bigint): PlatformLayout {
  // RAM fills [0, MMIO32_START) and continues at 4 GiB (platform/memory-map.ts ramRegions).
  const above4G = memory > X86Layout.MMIO32_START ? memory - X86Layout.MMIO32_START : 0n;
  const ramEnd = (1n << 32n) + above4G;
  const mmio64Start = ((ramEnd + GIB - 1n) / GIB) * GIB;
  const pins = BigInt(IOAPIC_PINS);
  return {
    arch: 'x86_64',
    spaces: {
      pio: { range: { start: 0n, end: 0x1_0000n }, alloc: { start: 0x1000n, end: 0x1_0000n } },
      mmio32: {
        range: { start: X86Layout.MMIO32_START, end: X86Layout.MMIO32_END },
        alloc: { start: X86Layout.MMIO_ALLOC_START, end: X86Layout.MMIO32_END },
      },
      mmio64: { range: { start: mmio64Start, end: PHYS_END }, alloc: { start: mmio64Start, end: PHYS_END } },
      irq: { range: { start: 0n, end: pins }, alloc: { start: BigInt(X86Layout.IRQ_ALLOC_START), end: pins } },
      msi: { range: { start: pins, end: MAX_GSI }, alloc: { start: pins, end: MAX_GSI } },
    },
    legacyIrqs: {
      com1: X86Layout.IRQ_COM1,
      com2: X86Layout.IRQ_COM2,
      com3: X86Layout.IRQ_COM1,
      com4: X86Layout.IRQ_COM2,
      keyboard: X86Layout.IRQ_KEYBOARD,
      rtc: X86Layout.IRQ_RTC,
      // PCI INTx (plugins/pci): ISA lines no device of this platform uses. Not 16..23: the DSDT's GSIS node
      // claims those edge-triggered for virtio-mmio, and Linux refuses a level PCI line on a pin set up as edge.
      'pci-inta': 5,
      'pci-intb': 6,
      'pci-intc': 10,
      'pci-intd': 11,
    },
    irqchipRoutes: x86IrqchipRoutes(),
    reserved: [{ space: 'irq', start: BigInt(X86Layout.IRQ_RTC), size: 1n, owner: 'reserved' }],
    fixed: { 'boot-timer': { start: X86Layout.BOOT_TIMER, size: X86Layout.BOOT_TIMER_SIZE } },
  };
}
