import type { GuestAddress, GuestRange } from '../address.js';

/** Which address space an access lands in. */
export type AddressSpace = 'pio' | 'mmio';

/**
 * A device's view of one bus access. `offset` is relative to the start of the
 * range the device registered; `data` is 1, 2, 4 or 8 bytes (for reads the device fills it).
 */
export interface BusDevice {
  read(offset: bigint, data: Uint8Array): void;
  write(offset: bigint, data: Uint8Array): void;
}

/**
 * One device's place on a bus: the address space, the guest range it answers (accesses inside it reach `device` with
 * offsets relative to the range's start) and the name used in errors, logs and listings.
 */
export interface BusRegistration {
  readonly space: AddressSpace;
  readonly range: GuestRange;
  readonly device: BusDevice;
  readonly name: string;
}

/** A handle that undoes what it was returned for. */
export interface Disposable {
  dispose(): void;
}

/**
 * The PIO and MMIO buses. Ranges may not overlap within one space; registering
 * an overlapping range throws a BusError naming both devices. An access to an
 * address no device claims reads as all ones and ignores writes (and is counted).
 */
export interface Bus {
  register(space: AddressSpace, range: GuestRange, device: BusDevice, name: string): Disposable;
  unregister(space: AddressSpace, range: GuestRange): void;
  find(space: AddressSpace, addr: GuestAddress | bigint): BusRegistration | undefined;
  read(space: AddressSpace, addr: GuestAddress | bigint, data: Uint8Array): boolean;
  write(space: AddressSpace, addr: GuestAddress | bigint, data: Uint8Array): boolean;
  registrations(space?: AddressSpace): readonly BusRegistration[];
  /** Counts of unclaimed accesses, for diagnostics. */
  readonly unclaimed: { pio: number; mmio: number };
}
