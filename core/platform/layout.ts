import type { GsiRoute } from '../hypervisor/hypervisor.js';
import { PlatformError } from './errors.js';

/**
 * The spaces the Resources service manages: I/O ports, the MMIO hole below 4 GiB, an MMIO
 * window above RAM, the interrupt controller's pins ('irq', legacy lines) and the GSIs that
 * carry MSI routes ('msi'). GSIs of both kinds share one number space in the hypervisor.
 */
export type ResourceSpace = 'pio' | 'mmio32' | 'mmio64' | 'irq' | 'msi';

/** Every resource space, in a fixed order (for listings and checks). */
export const RESOURCE_SPACES: readonly ResourceSpace[] = ['pio', 'mmio32', 'mmio64', 'irq', 'msi'];

/** A half-open span [start, end) of one space. */
export interface Span {
  readonly start: bigint;
  readonly end: bigint;
}

/**
 * One space of a platform: `range` is what may be reserved at fixed places (a legacy device's
 * ports), `alloc` (inside `range`) is where allocate() places what asks for any free place.
 */
export interface SpaceLayout {
  readonly range: Span;
  readonly alloc: Span;
}

/** A fixed place the platform keeps for itself from the start (e.g. a line no device may take). */
export interface FixedReservation {
  readonly space: ResourceSpace;
  readonly start: bigint;
  readonly size: bigint;
  readonly owner: string;
}

/**
 * The arch's facts the interrupt and resource services work from; the arch plugin
 * registers them under the `PlatformLayout` token. Core knows no numbers of its own.
 */
export interface PlatformLayout {
  /** The architecture these facts describe (the machine plugin's name for it). */
  readonly arch: string;
  /** The bounds of each space. */
  readonly spaces: Readonly<Record<ResourceSpace, SpaceLayout>>;
  /** Named legacy interrupt lines of the platform, lower case ('com1' -> 4, 'keyboard' -> 1 on a PC). */
  readonly legacyIrqs: Readonly<Record<string, number>>;
  /**
   * The irqchip pin routes the hypervisor's interrupt controller starts with. KVM's GSI routing
   * table is one table per VM and a write replaces all of it, so the Interrupts service writes
   * these back with every table that also carries MSI routes.
   */
  readonly irqchipRoutes: readonly GsiRoute[];
  /** Places reserved before any device asks (listed as allocations held by `owner`). */
  readonly reserved: readonly FixedReservation[];
  /** Device windows at fixed guest-physical addresses, by device name (e.g. 'boot-timer'). */
  readonly fixed: Readonly<Record<string, { readonly start: bigint; readonly size: bigint }>>;
}

/** Throws a PlatformError('Invalid') when a layout's spans are empty, reversed or `alloc` leaves `range`. */
export function checkPlatformLayout(layout: PlatformLayout): PlatformLayout {
  for (const space of RESOURCE_SPACES) {
    const s = layout.spaces[space];
    const bad = (why: string): never => {
      throw new PlatformError('Invalid', `platform layout: space '${space}' ${why}`, { space });
    };
    if (!s) bad('is missing');
    if (s.range.start < 0n || s.range.end < s.range.start) bad('has a reversed or negative range');
    if (s.alloc.end < s.alloc.start) bad('has a reversed allocation window');
    if (s.alloc.start < s.range.start || s.alloc.end > s.range.end) bad('allocates outside its range');
  }
  for (const [name, irq] of Object.entries(layout.legacyIrqs)) {
    const r = layout.spaces.irq.range;
    if (!Number.isInteger(irq) || BigInt(irq) < r.start || BigInt(irq) >= r.end)
      throw new PlatformError('Invalid', `platform layout: legacy line '${name}' = ${irq} is not an irqchip pin`, {
        name,
      });
  }
  return layout;
}
