import type { Disposable } from '../../core/bus/bus.js';
import { prefixCounters } from '../../core/device/counters.js';
import { hasCounters, type Device } from '../../core/device/device.js';
import type { EventFd } from '../../core/events/event-loop.js';
import type { Vm } from '../../core/hypervisor/hypervisor.js';
import type { Interrupts, MsiGroup } from '../../core/interrupts/interrupts.js';
import type { Logger } from '../../core/logger.js';
import type { GuestMemory } from '../../core/memory/guest-memory.js';
import type { PciFunctionContext } from '../../core/pci/device.js';
import type { Snapshottable } from '../../core/state/snapshottable.js';
import type { VirtioDevice } from '../../core/virtio/virtio.js';
import { PciReg } from '../pci/config/registers.js';
import { PciConfigSpace } from '../pci/config/space.js';
import { PciFunction } from '../pci/function.js';
import { MsixTable } from '../pci/msix.js';
import { addPciCfgCapability, addVirtioCapabilities } from './capabilities.js';
import {
  classCodeFor,
  Region,
  VIRTIO_BAR,
  VIRTIO_BAR_SIZE,
  VIRTIO_PCI_DEVICE_ID_BASE,
  VIRTIO_PCI_REVISION,
  VIRTIO_PCI_SUBSYSTEM_ID,
  VIRTIO_PCI_SUBSYSTEM_VENDOR_ID,
  VIRTIO_PCI_VENDOR_ID,
} from './layout.js';
import { NotifyEvents } from './notify-events.js';
import { checkFunction, loadFunction, saveFunction, FunctionStateSpec, type FunctionState } from './state.js';
import { VirtioPciTransport, type PciInterruptSink } from './transport.js';

/** What a VirtioPciFunction works with. */
export interface VirtioPciFunctionDeps {
  /** Guest memory, resolved when the driver sets DRIVER_OK. */
  memory: () => GuestMemory;
  /** One eventfd per queue (owned by the function from now on: closed when it is unplugged). */
  queueEvents: EventFd[];
  /** MSI-X vectors come from here when the function is plugged in (its requester id is known then). */
  interrupts: Interrupts;
  /** The VM, for the notify ioeventfds; undefined (or without ioeventfd support): notify writes trap. */
  vm: () => Vm | undefined;
  logger?: Logger;
}

/** The type 0 header of a virtio device's function, with its one BAR. */
function virtioConfigSpace(device: VirtioDevice): PciConfigSpace {
  return new PciConfigSpace({
    vendorId: VIRTIO_PCI_VENDOR_ID,
    deviceId: VIRTIO_PCI_DEVICE_ID_BASE + device.deviceType,
    classCode: classCodeFor(device.deviceType),
    revision: VIRTIO_PCI_REVISION,
    subsystemVendorId: VIRTIO_PCI_SUBSYSTEM_VENDOR_ID,
    subsystemId: VIRTIO_PCI_SUBSYSTEM_ID,
    interruptPin: 1,
    bars: [{ index: VIRTIO_BAR, kind: 'mmio64', size: VIRTIO_BAR_SIZE, prefetchable: true }],
  });
}

/**
 * One virtio device as a PCI function (virtio 1.2 §4.1), built on the pci plugin's PciFunction: a type 0
 * header with the virtio ids and class, one 64-bit prefetchable memory BAR holding the common
 * configuration, ISR, device configuration and notify regions plus the MSI-X table and PBA, the virtio
 * vendor capabilities pointing into it, the PCI configuration access capability, and MSI-X with one
 * vector per queue plus one for configuration changes. INTx (pin A) serves drivers that leave MSI-X off.
 * The virtio registers are the VirtioPciTransport's; the notify ioeventfds follow the BAR wherever the
 * guest moves it. Without bus mastering (command register) no MSI-X message is sent, and a running device that
 * loses it stops and needs a reset (VirtioPciTransport.busMasterOff).
 */
export class VirtioPciFunction extends PciFunction implements Device, Snapshottable<FunctionState> {
  readonly stateSpec = FunctionStateSpec;
  readonly msix: MsixTable;
  readonly transport: VirtioPciTransport;
  readonly notifyEvents: NotifyEvents;
  private group: MsiGroup | undefined;
  private readonly own: Disposable[] = [];

  constructor(
    readonly device: VirtioDevice,
    private readonly deps: VirtioPciFunctionDeps,
  ) {
    super(`virtio-pci:${device.id}`, virtioConfigSpace(device));
    const msix = new MsixTable(this.config, {
      vectors: device.queueMaxSizes.length + 1,
      tableBar: VIRTIO_BAR,
      tableOffset: Region.msixTable.offset,
      pbaBar: VIRTIO_BAR,
      pbaOffset: Region.msixPba.offset,
    });
    this.msix = msix;
    addVirtioCapabilities(this.config, device.configSize);
    addPciCfgCapability(this.config, {
      read: (off, data) => this.readBar(VIRTIO_BAR, off, data),
      write: (off, data) => this.writeBar(VIRTIO_BAR, off, data),
    });
    const irq: PciInterruptSink = {
      get msixEnabled() {
        return msix.enabled;
      },
      msixSize: msix.vectors,
      // an MSI-X message is a memory write: none without bus mastering
      msix: (v) => void (this.config.busMaster && msix.trigger(v)),
      intx: (level) => this.setIntx(level),
      notifier: (v) => this.group?.vector(v).notifier,
    };
    const transport = new VirtioPciTransport(device, {
      memory: deps.memory,
      queueEvents: deps.queueEvents,
      irq,
      logger: deps.logger,
    });
    this.transport = transport;
    this.notifyEvents = new NotifyEvents(deps.queueEvents, deps.vm, deps.logger);
    const page = 0x1000n;
    const region = (r: { offset: number }, size: bigint, read: Handler, write: Handler): void => {
      this.own.push(
        this.addBarRegion(VIRTIO_BAR, BigInt(r.offset), size, {
          read: (o, d) => this.guard('read', o, d, read),
          write: (o, d) => this.guard('write', o, d, write),
        }),
      );
    };
    const ignored: Handler = () => void transport.metrics.ignoredAccesses++;
    region(
      Region.common,
      page,
      (o, d) => transport.readCommon(o, d),
      (o, d) => transport.writeCommon(o, d),
    );
    region(Region.isr, page, (o, d) => transport.readIsr(o, d), ignored);
    region(
      Region.device,
      page,
      (o, d) => transport.readDevice(o, d),
      (o, d) => transport.writeDevice(o, d),
    );
    region(
      Region.notify,
      page,
      (_o, d) => void d.fill(0),
      (o) => transport.notify(o),
    );
    this.own.push(this.addBarRegion(msix.tableRegion), this.addBarRegion(msix.pbaRegion));
    this.own.push(this.onBarMapped((i, address) => i === VIRTIO_BAR && this.notifyEvents.place(address)));
    const busMasterOff = (): void => void (this.config.busMaster || transport.busMasterOff());
    this.own.push(this.config.watch(PciReg.COMMAND, 2, { onWrite: busMasterOff }));
  }

  /** Where the bus plugged the function in (undefined before and after). */
  get address(): PciFunctionContext['address'] | undefined {
    return this.context?.address;
  }

  override plugged(ctx: PciFunctionContext): void {
    super.plugged(ctx);
    this.group = this.deps.interrupts.msiGroup({
      owner: this.device.id,
      count: this.msix.vectors,
      devid: ctx.requesterId,
      irqfd: true,
    });
    this.msix.connect(this.group);
  }

  override unplugged(): void {
    this.transport.reset();
    this.notifyEvents.clear();
    super.unplugged();
    this.group?.dispose();
    this.group = undefined;
    for (const d of this.own.splice(0)) d.dispose();
    this.dispose();
    for (const ev of this.deps.queueEvents) ev.close();
  }

  // ---- Device / Snapshottable ----------------------------------------------------------

  /**
   * Flat monotonic counters (C4): the VirtioDevice's own (when it has them) and the transport's, prefixed
   * `transport.`: the registry lists the function, so vm.counters sees the device through it.
   */
  counters(): Record<string, number> {
    const own = hasCounters(this.device) ? this.device.counters() : {};
    const t = this.transport;
    return { ...own, ...prefixCounters('transport', { ...t.metrics, ...t.session.counters }) };
  }

  /** The VMM resets the VM: the virtio device goes back to its power-on state. */
  reset(): void {
    this.transport.reset();
  }

  saveState(): FunctionState {
    return saveFunction(this);
  }

  checkState(s: FunctionState): void {
    checkFunction(this, s);
  }

  loadState(s: FunctionState): void {
    loadFunction(this, s);
  }

  /** A device callback that throws must not reach the bus: the guest reads zeros, a write asks for a reset. */
  private guard(what: 'read' | 'write', off: bigint, data: Uint8Array, fn: Handler): void {
    try {
      if (what === 'read') data.fill(0);
      fn(Number(off), data);
    } catch (err) {
      if (what === 'read') data.fill(0);
      this.transport.session.logLimit.log(what, (suppressed) =>
        this.deps.logger?.warn(
          { err, device: this.device.id, offset: `0x${off.toString(16)}`, suppressed },
          `virtio-pci BAR ${what} failed`,
        ),
      );
      if (what === 'write') this.transport.session.needsReset(`BAR write failed: ${String(err)}`);
    }
  }
}

/** A BAR region's access, offset relative to the region. */
type Handler = (offset: number, data: Uint8Array) => void;
