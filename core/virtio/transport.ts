import type { Disposable } from '../bus/bus.js';
import type { VirtioDevice, VirtioInterrupt } from './virtio.js';

/** Options a device plugin may pass when attaching; every field is optional. */
export interface VirtioAttachOptions {
  /** Name used on the bus and in logs; defaults to the device's id. */
  readonly name?: string;
}

/**
 * What a transport did for one device. Disposing it detaches the device: the
 * transport unregisters its bus window, ioeventfds and irqfd and resets the device.
 */
export interface VirtioAttachment extends Disposable {
  /** The device's id (VirtioDevice.id). */
  readonly deviceId: string;
  /** The transport kind, e.g. 'mmio' or 'pci'. */
  readonly transport: string;
  /** Human-readable location, e.g. 'mmio 4K@0xd0000000:5'. */
  readonly location: string;
  /**
   * Interrupts towards the driver, usable at any time (e.g. a config change of a
   * net device's link state before or after activation).
   */
  readonly interrupt: VirtioInterrupt;
}

/**
 * A virtio transport as device plugins need it (virtio-blk, virtio-net, ...):
 * they hand over a transport-independent VirtioDevice and the transport
 * (mmio now, pci later) does the rest: address window, interrupt line, guest
 * announcement (kernel command line / PCI enumeration), queue notifications,
 * device status and feature negotiation, and calls VirtioDevice.activate() once
 * the driver set DRIVER_OK.
 *
 * Resolve it with `@inject(Tokens.VirtioTransport.token)` (manifest: requires
 * "VirtioTransport"). Throws a VmmError subclass when the device description is
 * invalid (e.g. no VIRTIO_F_VERSION_1 offered, a queue size not a power of two).
 */
export interface VirtioTransportHost {
  /** 'mmio' or 'pci'. */
  readonly kind: string;
  attachVirtioDevice(device: VirtioDevice, opts?: VirtioAttachOptions): VirtioAttachment;
}
