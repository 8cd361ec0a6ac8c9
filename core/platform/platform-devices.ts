import type { GuestRange } from '../address.js';
import type { Disposable } from '../bus/bus.js';

/**
 * A device the guest cannot discover by probing a bus (no PCI): firmware tables (ACPI DSDT, a
 * device tree) must describe it. Transports add their devices here; the arch machine reads the
 * list when it builds the tables, after every plugin registered and before any vCPU runs.
 */
export interface PlatformDeviceInfo {
  /** 'virtio-mmio' devices become ACPI `LNRO0005` nodes (what Linux's virtio_mmio driver matches). */
  kind: 'virtio-mmio';
  id: string;
  mmio: GuestRange;
  gsi: number;
}

/** The list of platform devices the firmware tables describe; add() returns the handle that removes one. */
export interface PlatformDevices {
  add(info: PlatformDeviceInfo): Disposable;
  list(): readonly PlatformDeviceInfo[];
}

/** The plain in-order list behind the PlatformDevices token. */
export class PlatformDeviceList implements PlatformDevices {
  private readonly items: PlatformDeviceInfo[] = [];

  add(info: PlatformDeviceInfo): Disposable {
    if (this.items.some((d) => d.id === info.id)) throw new Error(`platform device '${info.id}' is already listed`);
    this.items.push(info);
    return {
      dispose: () => {
        const i = this.items.indexOf(info);
        if (i >= 0) this.items.splice(i, 1);
      },
    };
  }

  list(): readonly PlatformDeviceInfo[] {
    return [...this.items];
  }
}
