/**
 * Test helpers for virtio-mmio and for device plugins that want to drive their
 * device through the real transport: `MmioDriver` plays the guest driver at the
 * register level; `mmioTestHost()` builds a VirtioMmioHost over a RangeBus, the
 * Resources and Interrupts services (test layout), a MockVm and in-memory eventfds.
 */
import { RangeBus } from '../../core/bus/range-bus.js';
import type { BusDevice } from '../../core/bus/bus.js';
import type { GuestMemory } from '../../core/memory/guest-memory.js';
import { AcpiTableSet } from '../acpi/table-set.js';
import { CmdlineBuilder } from '../../core/platform/cmdline-builder.js';
import { PlatformResources } from '../../core/platform/platform-resources.js';
import { VmInterrupts } from '../../core/interrupts/vm-interrupts.js';
import { testPlatformLayout } from '../../core/testing/test-layout.js';
import { MockHypervisor, type MockVm } from '../../core/testing/mock-hypervisor.js';
import { testGuestMemory } from '../../core/testing/test-memory.js';
import { DeviceStatus } from '../virtio/constants.js';
import { FakeEventSystem, type MockSplitQueue } from '../virtio/testing.js';
import { VirtioMmioHost } from './host.js';
import { Reg } from './registers.js';

/** The guest driver's side of one virtio-mmio window, register by register. */
export class MmioDriver {
  constructor(readonly dev: BusDevice) {}

  read32(off: number): number {
    const d = new Uint8Array(4);
    this.dev.read(BigInt(off), d);
    return new DataView(d.buffer).getUint32(0, true);
  }

  write32(off: number, v: number): void {
    const d = new Uint8Array(4);
    new DataView(d.buffer).setUint32(0, v >>> 0, true);
    this.dev.write(BigInt(off), d);
  }

  get status(): number {
    return this.read32(Reg.Status);
  }
  setStatus(bits: number): void {
    this.write32(Reg.Status, bits);
  }

  deviceFeatures(): bigint {
    this.write32(Reg.DeviceFeaturesSel, 0);
    const lo = this.read32(Reg.DeviceFeatures);
    this.write32(Reg.DeviceFeaturesSel, 1);
    return (BigInt(this.read32(Reg.DeviceFeatures)) << 32n) | BigInt(lo);
  }

  writeDriverFeatures(f: bigint): void {
    this.write32(Reg.DriverFeaturesSel, 0);
    this.write32(Reg.DriverFeatures, Number(f & 0xffff_ffffn));
    this.write32(Reg.DriverFeaturesSel, 1);
    this.write32(Reg.DriverFeatures, Number((f >> 32n) & 0xffff_ffffn));
  }

  /** reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK; returns the status read back. */
  negotiate(features?: bigint): number {
    this.setStatus(0);
    this.setStatus(DeviceStatus.ACKNOWLEDGE);
    this.setStatus(DeviceStatus.ACKNOWLEDGE | DeviceStatus.DRIVER);
    this.writeDriverFeatures(features ?? this.deviceFeatures());
    this.setStatus(DeviceStatus.ACKNOWLEDGE | DeviceStatus.DRIVER | DeviceStatus.FEATURES_OK);
    return this.status;
  }

  /** Programs queue `index` with the rings of a MockSplitQueue and sets QueueReady. */
  setupQueue(index: number, q: MockSplitQueue): void {
    this.write32(Reg.QueueSel, index);
    this.write32(Reg.QueueNum, q.size);
    this.write64(Reg.QueueDescLow, q.descTable);
    this.write64(Reg.QueueDriverLow, q.availRing);
    this.write64(Reg.QueueDeviceLow, q.usedRing);
    this.write32(Reg.QueueReady, 1);
  }

  write64(lowOff: number, v: bigint): void {
    this.write32(lowOff, Number(v & 0xffff_ffffn));
    this.write32(lowOff + 4, Number(v >> 32n));
  }

  driverOk(): number {
    this.setStatus(DeviceStatus.ACKNOWLEDGE | DeviceStatus.DRIVER | DeviceStatus.FEATURES_OK | DeviceStatus.DRIVER_OK);
    return this.status;
  }

  /** The whole init sequence for the given queues; returns the final status. */
  init(queues: readonly MockSplitQueue[], features?: bigint): number {
    this.negotiate(features);
    queues.forEach((q, i) => this.setupQueue(i, q));
    return this.driverOk();
  }

  notify(queue: number): void {
    this.write32(Reg.QueueNotify, queue);
  }

  /** Reads InterruptStatus and acknowledges it (what the Linux interrupt handler does). */
  ackInterrupts(): number {
    const s = this.read32(Reg.InterruptStatus);
    if (s) this.write32(Reg.InterruptACK, s);
    return s;
  }

  readConfig(off: number, len: 1 | 2 | 4 | 8): Uint8Array {
    const d = new Uint8Array(len);
    this.dev.read(BigInt(Reg.Config + off), d);
    return d;
  }

  writeConfig(off: number, data: Uint8Array): void {
    this.dev.write(BigInt(Reg.Config + off), data);
  }
}

/**
 * A VirtioMmioHost over test doubles (mock VM and hypervisor, fake event loop, heap memory) with everything a transport
 * test inspects.
 */
export interface MmioTestHost {
  host: VirtioMmioHost;
  bus: RangeBus;
  vm: MockVm;
  /** Records every VM call (callsTo('vm', 'setIrqLine')). */
  hypervisor: MockHypervisor;
  events: FakeEventSystem;
  memory: GuestMemory;
  cmdline: CmdlineBuilder;
  /** The ACPI tables the host contributes its DSDT nodes to. */
  acpi: AcpiTableSet;
  /** The Resources service the windows and lines come from. */
  resources: PlatformResources;
  /** A driver for the window at `base` (through the bus, as a vCPU exit would arrive). */
  driverAt(base: bigint): MmioDriver;
}

/** A VirtioMmioHost wired to test doubles; `vm: false` leaves it without a VM (bus notifications only). */
export function mmioTestHost(
  opts: { memorySize?: number; vm?: boolean; ioeventfd?: boolean; irqfd?: boolean } = {},
): MmioTestHost {
  const bus = new RangeBus();
  const hypervisor = new MockHypervisor();
  const vm = hypervisor.createVm() as MockVm;
  (vm.capabilities as { ioeventfd: boolean }).ioeventfd = opts.ioeventfd ?? true;
  (vm.capabilities as { irqfd: boolean }).irqfd = opts.irqfd ?? true;
  const events = new FakeEventSystem();
  const memory = testGuestMemory(opts.memorySize ?? 1 << 20);
  const cmdline = new CmdlineBuilder('console=ttyS0');
  const acpi = new AcpiTableSet();
  const resources = new PlatformResources(testPlatformLayout());
  const vmOf = () => (opts.vm === false ? undefined : vm);
  const host = new VirtioMmioHost({
    bus,
    resources,
    interrupts: new VmInterrupts({ resources, vm: vmOf, eventFds: events.factory }),
    cmdline,
    eventFds: events.factory,
    vm: vmOf,
    memory: () => memory,
    acpi,
  });
  const driverAt = (base: bigint): MmioDriver =>
    new MmioDriver({
      read: (off, data) => {
        bus.read('mmio', base + off, data);
      },
      write: (off, data) => {
        bus.write('mmio', base + off, data);
      },
    });
  return { host, bus, vm, hypervisor, events, memory, cmdline, acpi, resources, driverAt };
}
