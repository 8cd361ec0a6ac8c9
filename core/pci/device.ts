import type { LegacyIrq } from '../interrupts/interrupts.js';
import type { PciAddress } from './address.js';

/** Where a BAR lives: I/O ports, 32-bit memory, or 64-bit memory (two BAR registers). */
export type PciBarKind = 'io' | 'mmio32' | 'mmio64';

/** One base address register a function declares; the PCI bus places it and keeps it where the guest moves it. */
export interface PciBarSpec {
  /** BAR register index 0..5; a 64-bit BAR takes `index` and `index + 1`. */
  readonly index: number;
  readonly kind: PciBarKind;
  /** Size in bytes, a power of two (I/O: at least 4; memory: at least 16, the bus may place it on a 4 KiB boundary). */
  readonly size: bigint;
  /** Memory BARs: the prefetchable bit (bit 3). */
  readonly prefetchable?: boolean;
}

/** What the bus tells a function when it is plugged in (before the guest can see it). */
export interface PciFunctionContext {
  /** The function's address on its segment. */
  readonly address: PciAddress;
  /**
   * The INTx line wired to the function's interrupt pin through the platform's routing (the DSDT's _PRT),
   * a level line with a resample notification; undefined when the function's Interrupt Pin register is 0.
   */
  readonly intx: LegacyIrq | undefined;
  /** The requester id (bus << 8 | devfn) for MSI routes that need one (MsiGroupOptions.devid). */
  readonly requesterId: number;
  /**
   * The function calls it when its configuration space changed other than by a configuration write (a restored
   * state): the bus reads the command and BAR registers back and maps, moves or unmaps the windows, as after a write.
   */
  readonly configChanged?: () => void;
}

/**
 * A PCI function as the PCI bus needs it (Cloud Hypervisor's PciDevice, rust-vmm's vm-device): its
 * configuration space and its BARs. The function's configuration space is the truth: the bus reads the
 * command register and the BAR registers back after each configuration write and moves or unmaps the
 * BAR windows on the VMM's bus accordingly (memory/I-O decode off = unmapped), then calls barMapped().
 * Device plugins build the configuration space with the pci plugin's config-space helper (declared
 * registers and writable masks, BAR sizing, capability lists, MSI/MSI-X) instead of hand-written code.
 *
 * All methods run on the main thread. Offsets and sizes come from the guest: the bus passes only
 * naturally aligned accesses of 1, 2 or 4 bytes inside configSize; BAR accesses only inside the BAR.
 */
export interface PciDevice {
  /** Unique in the VM (the device registry id of the function). */
  readonly id: string;
  /** Bytes of configuration space: 256 (conventional) or 4096 (PCI Express extended, through ECAM only). */
  readonly configSize: 256 | 4096;
  /** The BARs this function decodes; fixed for its lifetime. */
  readonly bars: readonly PciBarSpec[];
  /**
   * Called once by the bus when the function is plugged in, before any other call but configuration reads (the
   * bus reads the Interrupt Pin register first, to wire `ctx.intx`).
   */
  plugged(ctx: PciFunctionContext): void;
  /** A configuration read of `size` bytes at `offset` (little endian value). */
  readConfig(offset: number, size: 1 | 2 | 4): number;
  /** A configuration write; BAR placement, command-register decode and capability semantics are the function's. */
  writeConfig(offset: number, size: 1 | 2 | 4, value: number): void;
  /** A guest access inside BAR `index` at `offset` bytes from its base. */
  readBar(index: number, offset: bigint, data: Uint8Array): void;
  /** A guest write inside BAR `index`. */
  writeBar(index: number, offset: bigint, data: Uint8Array): void;
  /**
   * After the bus mapped BAR `index` at `address` (guest-physical or port), or unmapped it (undefined: decode off,
   * or the guest is sizing it). Functions with fast paths on a BAR (ioeventfds, direct memory slots) move them here.
   */
  barMapped?(index: number, address: bigint | undefined): void;
  /** Unplugged (the bus already removed its windows): release interrupts, eventfds, back ends. */
  unplugged?(): void | Promise<void>;
}
