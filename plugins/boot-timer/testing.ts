import { BOOT_MARKER_VALUE } from './device.js';
import type { BusDevice } from '../../core/bus/bus.js';

/** A hand-driven monotonic clock for BootTimer's `now` option. */
export class ManualMonotonic {
  constructor(public ms = 0) {}
  readonly now = (): number => this.ms;
}

/** What the guest kit's init does: `devmem 0xd0000000 8 123`. */
export function writeBootMarker(dev: BusDevice): void {
  dev.write(0n, Uint8Array.of(BOOT_MARKER_VALUE));
}
