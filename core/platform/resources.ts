import type { GuestRange } from '../address.js';
import type { Disposable } from '../bus/bus.js';
import type { PlatformLayout, ResourceSpace, SpaceLayout } from './layout.js';

/** The guest kernel command line, built from the config plus what devices append. */
export interface KernelCmdline {
  append(fragment: string): void;
  toString(): string;
}

/**
 * A place held in one resource space: ports, an MMIO window, one interrupt line or one MSI GSI.
 * dispose() frees it (idempotent); a freed place can be handed out again (hotplug).
 */
export interface Allocation extends Disposable {
  readonly space: ResourceSpace;
  readonly start: bigint;
  readonly size: bigint;
  readonly owner: string;
  /** The place as a guest range (for the PIO and MMIO buses). */
  readonly range: GuestRange;
  /** `start` as a number: the line or GSI of 'irq' and 'msi' allocations. */
  readonly number: number;
}

/**
 * The VM's resource service: one owner for I/O ports, the 32-bit MMIO hole, the 64-bit MMIO
 * window above RAM, interrupt lines and MSI GSIs. Bounds and legacy line numbers come from the
 * arch's `PlatformLayout`. Errors are PlatformErrors: 'Exhausted', 'Taken' (names the holder),
 * 'OutOfRange', 'Invalid'.
 */
export interface Resources {
  /** The lowest free place of `size` (default 1) aligned to `align` (default 1) in the space's allocation window. */
  allocate(space: ResourceSpace, req: { owner: string; size?: bigint; align?: bigint }): Allocation;
  /** Takes a fixed place (a legacy device's ports or line): anywhere in the space's range, never overlapping. */
  reserve(space: ResourceSpace, start: bigint, req: { owner: string; size?: bigint }): Allocation;
  /** What is held in a space, lowest first (the layout's own reservations included). */
  allocations(space: ResourceSpace): readonly Allocation[];
  /** The bounds of a space. */
  window(space: ResourceSpace): SpaceLayout;
  /** The platform's line for a named legacy interrupt ('com1' -> 4 on a PC); throws when it has none. */
  legacyIrq(name: string): number;
  /** The layout the service works from. */
  readonly layout: PlatformLayout;
}
