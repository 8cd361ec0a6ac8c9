import type { GuestRange } from '../address.js';

/** Hands out interrupt lines (GSIs) of the platform's interrupt controller. */
export interface IrqAllocator {
  allocate(): number;
  /** Claims a fixed line (legacy devices: COM1 = 4); throws when taken. */
  claim(irq: number, owner: string): number;
}

/** Hands out guest-physical MMIO windows for devices. */
export interface MmioAllocator {
  allocate(size: bigint, align: bigint, owner: string): GuestRange;
}

/** The guest kernel command line, built from the config plus what devices append. */
export interface KernelCmdline {
  append(fragment: string): void;
  toString(): string;
}
