import type { Disposable } from '../../core/bus/bus.js';
import type { DeviceRegistry } from '../../core/device/device.js';
import type { EventFdFactory } from '../../core/events/event-loop.js';
import type { Vm } from '../../core/hypervisor/hypervisor.js';
import type { Interrupts } from '../../core/interrupts/interrupts.js';
import type { Logger } from '../../core/logger.js';
import type { GuestMemory } from '../../core/memory/guest-memory.js';
import { formatPciAddress } from '../../core/pci/address.js';
import type { PciAttachment, PciBus } from '../../core/pci/bus.js';
import type { VirtioAttachment, VirtioAttachOptions, VirtioTransportHost } from '../../core/virtio/transport.js';
import { VIRTIO_F_VERSION_1, type VirtioDevice } from '../../core/virtio/virtio.js';
import { MAX_QUEUE_SIZE, isPowerOfTwo } from '../virtio/constants.js';
import { VirtioPciError } from './errors.js';
import { VirtioPciFunction } from './function.js';
import { MAX_QUEUES, Region } from './layout.js';

/** The VM services a VirtioPciHost attaches devices with. */
export interface VirtioPciHostDeps {
  /** Each device becomes a function on this bus (plugged in at boot or at runtime). */
  pci: PciBus;
  /** MSI-X vectors (one group per function, sized queues + 1). */
  interrupts: Interrupts;
  eventFds: EventFdFactory;
  /** The VM, for notify ioeventfds; undefined (tests, or a VM without ioeventfd): notify writes trap. */
  vm: () => Vm | undefined;
  /** Guest memory, resolved when a driver sets DRIVER_OK. */
  memory: () => GuestMemory;
  /** When given, each function is listed there while attached (snapshot, reset, teardown walk it). */
  devices?: DeviceRegistry;
  logger?: Logger;
}

/** One attached device and what undoes it. */
interface Attached {
  fn: VirtioPciFunction;
  pci: PciAttachment;
  registered?: Disposable;
}

/**
 * The virtio-pci transport service ('pci'): each VirtioDevice becomes a PCI function on the VM's PCI bus
 * (VirtioPciFunction: modern virtio 1.x registers in one 64-bit BAR, MSI-X, INTx). Works before the VM
 * starts and at runtime (the bus tells a hotplug controller). Detaching unplugs the function: the bus
 * removes its windows and frees its BAR space; the function resets the device, drops its ioeventfds,
 * frees its MSI-X vectors and closes its eventfds.
 */
export class VirtioPciHost implements VirtioTransportHost, Disposable {
  /** The transport's name in configs (`transport: pci`). */
  readonly name = 'pci';
  private readonly attached = new Map<string, Attached>();

  constructor(private readonly deps: VirtioPciHostDeps) {}

  /** The functions attached now, in attach order. */
  get functions(): readonly VirtioPciFunction[] {
    return [...this.attached.values()].map((a) => a.fn);
  }

  attachVirtioDevice(device: VirtioDevice, opts: VirtioAttachOptions = {}): VirtioAttachment {
    this.check(device);
    const name = opts.name ?? device.id;
    // The function owns these eventfds from here on (closed when it is unplugged).
    const queueEvents = device.queueMaxSizes.map(() => this.deps.eventFds.create({ nonBlocking: true }));
    let fn: VirtioPciFunction;
    let pci: PciAttachment;
    try {
      fn = new VirtioPciFunction(device, {
        memory: this.deps.memory,
        queueEvents,
        interrupts: this.deps.interrupts,
        vm: () => this.vm(),
        logger: this.deps.logger?.child({ device: device.id }),
      });
      pci = this.deps.pci.add(fn, { name });
    } catch (err) {
      queueEvents.forEach((e) => e.close());
      throw new VirtioPciError(
        'Attach',
        `cannot attach virtio device '${device.id}' to PCI: ${(err as Error)?.message ?? String(err)}`,
        { device: device.id },
        { cause: err },
      );
    }
    let registered: Disposable | undefined;
    try {
      registered = this.deps.devices?.add(fn);
    } catch (err) {
      pci.dispose();
      throw err;
    }
    this.attached.set(device.id, { fn, pci, registered });
    const location = `pci ${formatPciAddress(pci.address)}`;
    this.deps.logger?.info({ device: device.id, location }, 'virtio device attached');
    return {
      deviceId: device.id,
      transport: this.name,
      location,
      interrupt: fn.transport.interrupt,
      dispose: () => this.detach(device.id),
    };
  }

  /** Unplugs one device's function (surprise removal; a hotplug controller asks the guest first). */
  detach(id: string): void {
    const a = this.attached.get(id);
    if (!a) return;
    this.attached.delete(id);
    try {
      a.pci.dispose();
    } catch (err) {
      this.deps.logger?.warn({ err, device: id }, 'virtio-pci: unplug failed');
    }
    void a.registered?.dispose();
  }

  dispose(): void {
    for (const id of [...this.attached.keys()].reverse()) this.detach(id);
  }

  private check(device: VirtioDevice): void {
    const bad = (why: string): never => {
      throw new VirtioPciError('InvalidDevice', `virtio device '${device.id}' ${why}`, { device: device.id });
    };
    if (this.attached.has(device.id)) bad('is already attached');
    if ((device.deviceFeatures & VIRTIO_F_VERSION_1) === 0n)
      bad('does not offer VIRTIO_F_VERSION_1 (virtio-pci here is modern only)');
    if (device.deviceFeatures < 0n || device.deviceFeatures >= 1n << 64n) bad('offers features outside 64 bits');
    if (!Number.isInteger(device.deviceType) || device.deviceType < 0 || device.deviceType > 0x3f)
      bad(`has device type ${device.deviceType}, outside the PCI device id range (0..63)`);
    const n = device.queueMaxSizes.length;
    if (n === 0 || n > MAX_QUEUES) bad(`has ${n} queues (1..${MAX_QUEUES})`);
    device.queueMaxSizes.forEach((s, i) => {
      if (!isPowerOfTwo(s) || s > MAX_QUEUE_SIZE)
        bad(`queue ${i} maximum size ${s} is not a power of two up to ${MAX_QUEUE_SIZE}`);
    });
    const size = device.configSize;
    if (size !== undefined && (!Number.isInteger(size) || size < 0 || size > Region.device.length))
      bad(`config size ${size} does not fit the ${Region.device.length}-byte device region`);
  }

  private vm(): Vm | undefined {
    try {
      return this.deps.vm();
    } catch {
      return undefined;
    }
  }
}
