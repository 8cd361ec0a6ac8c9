/**
 * The arm64 guest-physical map (the shape of QEMU's `-M virt` below 1 GiB, so a kernel configured for that
 * machine finds nothing surprising): the GICv3 distributor, ITS and redistributors, the UART, the boot timer,
 * the device window virtio-mmio allocates from, and RAM from 1 GiB. Interrupts: KVM's irqfd GSI g is SPI g
 * (INTID g + 32); the UART has SPI 1 as on QEMU's virt.
 */
import type { GsiRoute } from '../../core/hypervisor/hypervisor.js';
import type { PlatformLayout } from '../../core/platform/layout.js';
import { Arm64Error } from './errors.js';

const KIB = 1n << 10n,
  MIB = 1n << 20n,
  GIB = 1n << 30n;

/** Fixed guest-physical addresses and interrupt numbers of the arm64 machine. */
export const Arm64Layout = {
  GIC_DIST: 0x0800_0000n,
  GIC_DIST_SIZE: 64n * KIB,
  GIC_ITS: 0x0808_0000n,
  GIC_ITS_SIZE: 128n * KIB,
  GIC_REDIST: 0x080a_0000n,
  /** One vCPU's redistributor (RD_base + SGI_base frames). */
  GIC_REDIST_SIZE: 128n * KIB,
  /** Redistributors fill [GIC_REDIST, UART): room for 123 vCPUs. */
  GIC_REDIST_END: 0x0900_0000n,
  UART: 0x0900_0000n,
  UART_SIZE: 4n * KIB,
  /** The boot-time marker device (plugins/boot-timer). */
  BOOT_TIMER: 0x0901_0000n,
  BOOT_TIMER_SIZE: 4n * KIB,
  /** Where devices' MMIO windows are allocated (virtio-mmio's 4 KiB pages). */
  MMIO_ALLOC_START: 0x0a00_0000n,
  MMIO_END: 0x1000_0000n,
  /** RAM starts at 1 GiB and may grow to the 64-bit window. */
  RAM_START: GIB,
  RAM_MAX: 255n * GIB,
  /** The 64-bit MMIO window (unused by the devices of today; kept for PCI BARs). */
  MMIO64_START: 256n * GIB,
  MMIO64_END: 512n * GIB,
  /** SPIs (GSIs): 0 unused, 1 the UART, 2.. for devices; the vGIC is given GIC_NR_IRQS interrupts in all. */
  SPI_UART: 1,
  SPI_ALLOC_START: 2,
  GIC_NR_IRQS: 128,
  /** GSIs above the SPIs carry MSI routes (through the ITS). */
  MSI_GSI_END: 4096,
  /** The architected timer's PPIs (INTID - 16): secure, non-secure physical, virtual, hypervisor. */
  TIMER_PPIS: [13, 14, 11, 10],
} as const;

/** The number of SPIs the vGIC gets (GIC_NR_IRQS less the 32 private interrupts). */
export const ARM64_SPIS = Arm64Layout.GIC_NR_IRQS - 32;

/** The most vCPUs the redistributor region holds. */
export const ARM64_MAX_VCPUS = Number(
  (Arm64Layout.GIC_REDIST_END - Arm64Layout.GIC_REDIST) / Arm64Layout.GIC_REDIST_SIZE,
);

/** One RAM region of the guest. */
export interface RamRegion {
  readonly start: bigint;
  readonly size: bigint;
}

/** The guest's RAM: one region from 1 GiB. Refuses sizes that are not whole 2 MiB blocks or do not fit. */
export function arm64RamRegions(memory: bigint): RamRegion[] {
  if (memory <= 0n || memory % (2n * MIB) !== 0n)
    throw new Arm64Error('InvalidConfig', `arm64 memory ${memory} must be a positive multiple of 2 MiB`, {
      memory: memory.toString(),
    });
  if (memory > Arm64Layout.RAM_MAX)
    throw new Arm64Error('InvalidConfig', `arm64 memory ${memory} exceeds ${Arm64Layout.RAM_MAX} bytes`, {
      memory: memory.toString(),
    });
  return [{ start: Arm64Layout.RAM_START, size: memory }];
}

/** The redistributor region for `vcpus` vCPUs (one 128 KiB frame pair each). */
export function arm64Redistributors(vcpus: number): RamRegion {
  if (!Number.isInteger(vcpus) || vcpus < 1 || vcpus > ARM64_MAX_VCPUS)
    throw new Arm64Error('InvalidConfig', `arm64 vcpus ${vcpus} must be 1..${ARM64_MAX_VCPUS}`, { vcpus });
  return { start: Arm64Layout.GIC_REDIST, size: BigInt(vcpus) * Arm64Layout.GIC_REDIST_SIZE };
}

/** KVM's default vGIC routing: GSI g is pin g of irqchip 0 (SPI g) for every SPI. */
export function arm64IrqchipRoutes(): GsiRoute[] {
  return Array.from({ length: ARM64_SPIS }, (_, gsi) => ({ gsi, kind: 'irqchip' as const, chip: 0, pin: gsi }));
}

/**
 * The arm64 PlatformLayout: no port I/O, the device window below 256 MiB, a 64-bit window, SPIs from 2 for
 * devices (the UART's line named 'com1' so the serial plugin finds it), MSI GSIs above the SPIs.
 */
export function arm64PlatformLayout(): PlatformLayout {
  const spis = BigInt(ARM64_SPIS);
  return {
    arch: 'aarch64',
    spaces: {
      pio: { range: { start: 0n, end: 0n }, alloc: { start: 0n, end: 0n } },
      mmio32: {
        range: { start: Arm64Layout.GIC_DIST, end: Arm64Layout.MMIO_END },
        alloc: { start: Arm64Layout.MMIO_ALLOC_START, end: Arm64Layout.MMIO_END },
      },
      mmio64: {
        range: { start: Arm64Layout.MMIO64_START, end: Arm64Layout.MMIO64_END },
        alloc: { start: Arm64Layout.MMIO64_START, end: Arm64Layout.MMIO64_END },
      },
      irq: { range: { start: 0n, end: spis }, alloc: { start: BigInt(Arm64Layout.SPI_ALLOC_START), end: spis } },
      msi: {
        range: { start: spis, end: BigInt(Arm64Layout.MSI_GSI_END) },
        alloc: { start: spis, end: BigInt(Arm64Layout.MSI_GSI_END) },
      },
    },
    legacyIrqs: { com1: Arm64Layout.SPI_UART },
    irqchipRoutes: arm64IrqchipRoutes(),
    reserved: [
      { space: 'irq', start: 0n, size: 1n, owner: 'reserved' },
      {
        space: 'mmio32',
        start: Arm64Layout.GIC_DIST,
        size: Arm64Layout.UART - Arm64Layout.GIC_DIST,
        owner: 'gic',
      },
    ],
    fixed: { 'boot-timer': { start: Arm64Layout.BOOT_TIMER, size: Arm64Layout.BOOT_TIMER_SIZE } },
  };
}
