import type { Disposable } from '../bus/bus.js';
import type { PciAddress } from './address.js';
import type { PciDevice } from './device.js';

/** Where to plug a function; everything optional. */
export interface PciAddOptions {
  /** Slot (device number) 1..31 on bus 0; omitted: the lowest free slot. */
  readonly slot?: number;
  /** Name used in logs and on the VMM's bus (default: the device id). */
  readonly name?: string;
}

/** A plugged function. dispose() unplugs it at once: its windows go, its BARs' resources are freed, slot reusable. */
export interface PciAttachment extends Disposable {
  readonly address: PciAddress;
  readonly device: PciDevice;
}

/** What changed on the bus, for listeners such as an ACPI hotplug controller. */
export interface PciBusChange {
  readonly kind: 'added' | 'removed';
  readonly attachment: PciAttachment;
  /** True when the VM's vCPUs had already started: the guest must be told (hotplug). */
  readonly running: boolean;
}

/**
 * PCI segment 0 as device plugins see it (provided by plugins/pci): plug functions in before the VM
 * starts or while it runs. Plugging in places the function's BARs through the Resources service and
 * wires its INTx pin; the guest finds it by enumeration (boot) or after a hotplug notification (a
 * hotplug controller listens to onChange). Removal that needs the guest's consent (eject) is the
 * hotplug controller's business; dispose() of an attachment is the surprise removal underneath.
 */
export interface PciBus {
  /** Plugs a function in; throws a one-line error when the slot is taken or resources are exhausted. */
  add(device: PciDevice, opts?: PciAddOptions): PciAttachment;
  /** Functions plugged in now, by slot order. */
  attachments(): readonly PciAttachment[];
  /** Calls `listener` after every add and removal. */
  onChange(listener: (change: PciBusChange) => void): Disposable;
}
