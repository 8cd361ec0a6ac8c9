/**
 * Loads Linux for arm64 into guest memory (booting.rst): checks the Image header, plans where the kernel,
 * initramfs and device tree go, builds the device tree, checks it fits, and only then writes. The boot CPU
 * then starts at the kernel with x0 = the device tree's address (Arm64Machine sets the registers).
 */
import { GuestAddress } from '../../../core/address.js';
import type { GuestMemory } from '../../../core/memory/guest-memory.js';
import { Arm64Error } from '../errors.js';
import { machineFdt, type DtMmioDevice } from '../fdt/machine-tree.js';
import { Arm64Layout, arm64Redistributors } from '../layout.js';
import { parseArm64Image } from './image.js';
import { ARM64_FDT_MAX, planArm64Boot, type Arm64BootPlan } from './placement.js';
import { splitVirtioMmioArgs } from './virtio-args.js';

/** What a boot needs beside the memory. */
export interface Arm64LoadInput {
  kernel: Uint8Array;
  initramfs?: Uint8Array;
  cmdline: string;
  /** Each vCPU's MPIDR affinity (the device tree's cpu `reg`), in vCPU order. */
  mpidrs: readonly bigint[];
  /** The ns16550a UART, when one is on the bus. */
  uart?: DtMmioDevice;
  /** Whether the GICv3 has an ITS. */
  its: boolean;
}

/** A loaded boot: where things went and the device tree written. */
export interface Arm64Loaded extends Arm64BootPlan {
  readonly fdtBytes: Uint8Array;
  readonly bootargs: string;
  readonly virtioMmio: readonly DtMmioDevice[];
}

/** The 8250 clock the device tree gives the UART (the usual 1.8432 MHz: divisor 1 = 115200 baud). */
export const UART_CLOCK_HZ = 1_843_200;

/** Checks everything, then writes kernel, initramfs and device tree into `memory`'s first RAM region. */
export function loadArm64Linux(memory: GuestMemory, input: Arm64LoadInput): Arm64Loaded {
  const header = parseArm64Image(input.kernel);
  const region = memory.regions[0];
  if (!region) throw new Arm64Error('NoRoom', 'arm64 boot: the guest has no RAM');
  const ram = { start: region.range.start.value, size: region.range.length };
  const plan = planArm64Boot(ram, header, input.initramfs?.length);
  const { bootargs, devices } = splitVirtioMmioArgs(input.cmdline);
  const virtioMmio = devices.map((d) => ({ base: d.base, size: d.size, spi: d.gsi }));
  const fdtBytes = machineFdt({
    memory: [{ base: ram.start, size: ram.size }],
    cpus: input.mpidrs,
    gic: {
      dist: { base: Arm64Layout.GIC_DIST, size: Arm64Layout.GIC_DIST_SIZE },
      redist: (({ start, size }) => ({ base: start, size }))(arm64Redistributors(input.mpidrs.length)),
      its: input.its ? { base: Arm64Layout.GIC_ITS, size: Arm64Layout.GIC_ITS_SIZE } : undefined,
    },
    timerPpis: Arm64Layout.TIMER_PPIS,
    uart: input.uart && { ...input.uart, clockHz: UART_CLOCK_HZ },
    virtioMmio,
    bootargs,
    initrd: plan.initrd,
  });
  if (fdtBytes.length > ARM64_FDT_MAX)
    throw new Arm64Error('NoRoom', `arm64 boot: the device tree (${fdtBytes.length} bytes) exceeds 2 MiB`);
  memory.write(GuestAddress.of(plan.kernel), input.kernel);
  if (input.initramfs && plan.initrd) memory.write(GuestAddress.of(plan.initrd.start), input.initramfs);
  memory.write(GuestAddress.of(plan.fdt), fdtBytes);
  return { ...plan, fdtBytes, bootargs, virtioMmio };
}
