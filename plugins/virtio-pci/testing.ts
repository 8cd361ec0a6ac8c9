/**
 * Test helpers for virtio-pci and for device plugins that want to drive a device through it:
 * `VirtioPciDriver` plays the guest's virtio_pci_modern driver through configuration space and the BAR of
 * a function on the pci plugin's TestPciBus; `pciTestHost()` builds a VirtioPciHost on such a bus.
 */
import type { Interrupts } from '../../core/interrupts/interrupts.js';
import { VmInterrupts } from '../../core/interrupts/vm-interrupts.js';
import type { GuestMemory } from '../../core/memory/guest-memory.js';
import type { Logger } from '../../core/logger.js';
import type { PciAttachment } from '../../core/pci/bus.js';
import type { PciDevice } from '../../core/pci/device.js';
import { PlatformResources } from '../../core/platform/platform-resources.js';
import { MockHypervisor, type MockVm } from '../../core/testing/mock-hypervisor.js';
import { testPlatformLayout } from '../../core/testing/test-layout.js';
import { testGuestMemory } from '../../core/testing/test-memory.js';
import { TestPciBus } from '../pci/testing.js';
import { DeviceStatus } from '../virtio/constants.js';
import { FakeEventSystem, type MockSplitQueue } from '../virtio/testing.js';
import { VirtioPciHost } from './host.js';
import { CfgType, Common } from './layout.js';

/** A virtio capability as the driver finds it in the capability list. */
export interface FoundCap {
  cfgType: number;
  bar: number;
  offset: number;
  length: number;
  /** Where the capability lies in configuration space. */
  at: number;
  /** The notify capability's notify_off_multiplier. */
  notifyOffMultiplier?: number;
}

/**
 * The guest driver's side of one virtio-pci function (what Linux's virtio_pci_modern does): it enables
 * the function (memory decode, bus master), finds the virtio capabilities, and reads and writes the
 * structures through the BAR at the offsets they announce.
 */
export class VirtioPciDriver {
  readonly caps: FoundCap[];
  readonly device: PciDevice;

  constructor(
    readonly bus: TestPciBus,
    readonly att: PciAttachment,
  ) {
    this.device = att.device;
    bus.enable(this.device);
    this.caps = this.findCaps();
  }

  cfgRead(off: number, size: 1 | 2 | 4): number {
    return this.bus.readConfig(this.device, off, size);
  }
  cfgWrite(off: number, size: 1 | 2 | 4, value: number): void {
    this.bus.writeConfig(this.device, off, size, value);
  }

  /** The capability list's entries with id `id` (configuration-space offsets). */
  capsWithId(id: number): number[] {
    const out: number[] = [];
    let at = this.cfgRead(0x06, 2) & 0x10 ? this.cfgRead(0x34, 1) : 0;
    for (let n = 0; at >= 0x40 && n < 48; n++) {
      if (this.cfgRead(at, 1) === id) out.push(at);
      at = this.cfgRead(at + 1, 1);
    }
    return out;
  }

  private findCaps(): FoundCap[] {
    return this.capsWithId(0x09).map((at) => ({
      at,
      cfgType: this.cfgRead(at + 3, 1),
      bar: this.cfgRead(at + 4, 1),
      offset: this.cfgRead(at + 8, 4),
      length: this.cfgRead(at + 12, 4),
      notifyOffMultiplier: this.cfgRead(at + 3, 1) === CfgType.notify ? this.cfgRead(at + 16, 4) : undefined,
    }));
  }

  cap(type: number): FoundCap {
    const c = this.caps.find((x) => x.cfgType === type);
    if (!c) throw new Error(`no virtio capability of type ${type}`);
    return c;
  }

  /** Where BAR `index` decodes now (throws when it does not). */
  barBase(index = 0): bigint {
    const b = this.bus.mapped(this.device, index);
    if (b === undefined) throw new Error(`BAR ${index} is not mapped`);
    return b;
  }

  /** Reads `size` bytes at `off` of the region of capability `type` (through the BAR). */
  read(type: number, off: number, size: 1 | 2 | 4 | 8): bigint {
    const c = this.cap(type);
    return this.bus.readBar(this.device, c.bar, BigInt(c.offset + off), size);
  }

  write(type: number, off: number, size: 1 | 2 | 4 | 8, value: number | bigint): void {
    const c = this.cap(type);
    this.bus.writeBar(this.device, c.bar, BigInt(c.offset + off), size, value);
  }

  common(off: number, size: 1 | 2 | 4 | 8): number {
    return Number(this.read(CfgType.common, off, size));
  }
  setCommon(off: number, size: 1 | 2 | 4 | 8, value: number | bigint): void {
    this.write(CfgType.common, off, size, value);
  }

  get status(): number {
    return this.common(Common.deviceStatus, 1);
  }
  setStatus(v: number): void {
    this.setCommon(Common.deviceStatus, 1, v);
  }

  deviceFeatures(): bigint {
    this.setCommon(Common.deviceFeatureSelect, 4, 0);
    const lo = BigInt(this.common(Common.deviceFeature, 4));
    this.setCommon(Common.deviceFeatureSelect, 4, 1);
    return (BigInt(this.common(Common.deviceFeature, 4)) << 32n) | lo;
  }

  /** reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK; returns the status read back. */
  negotiate(features?: bigint): number {
    const f = features ?? this.deviceFeatures();
    this.setStatus(0);
    this.setStatus(DeviceStatus.ACKNOWLEDGE);
    this.setStatus(DeviceStatus.ACKNOWLEDGE | DeviceStatus.DRIVER);
    this.setCommon(Common.driverFeatureSelect, 4, 0);
    this.setCommon(Common.driverFeature, 4, Number(f & 0xffff_ffffn));
    this.setCommon(Common.driverFeatureSelect, 4, 1);
    this.setCommon(Common.driverFeature, 4, Number(f >> 32n));
    this.setStatus(DeviceStatus.ACKNOWLEDGE | DeviceStatus.DRIVER | DeviceStatus.FEATURES_OK);
    return this.status;
  }

  /** Programs queue `index` with a MockSplitQueue's rings (64-bit fields as two 32-bit writes), its vector, enable. */
  setupQueue(index: number, q: MockSplitQueue, vector?: number): void {
    this.setCommon(Common.queueSelect, 2, index);
    this.setCommon(Common.queueSize, 2, q.size);
    for (const [off, v] of [
      [Common.queueDesc, q.descTable],
      [Common.queueDriver, q.availRing],
      [Common.queueDevice, q.usedRing],
    ] as const) {
      this.setCommon(off, 4, Number(v & 0xffff_ffffn));
      this.setCommon(off + 4, 4, Number(v >> 32n));
    }
    if (vector !== undefined) this.setCommon(Common.queueMsixVector, 2, vector);
    this.setCommon(Common.queueEnable, 2, 1);
  }

  driverOk(): number {
    this.setStatus(DeviceStatus.ACKNOWLEDGE | DeviceStatus.DRIVER | DeviceStatus.FEATURES_OK | DeviceStatus.DRIVER_OK);
    return this.status;
  }

  /** Writes the queue index at the queue's notify address (queue_notify_off * multiplier), 16 bits. */
  notify(queue: number): void {
    this.setCommon(Common.queueSelect, 2, queue);
    const off = this.common(Common.queueNotifyOff, 2) * (this.cap(CfgType.notify).notifyOffMultiplier ?? 0);
    this.write(CfgType.notify, off, 2, queue);
  }

  /** Reads (and so clears) the ISR byte. */
  isr(): number {
    return Number(this.read(CfgType.isr, 0, 1));
  }

  /** Turns MSI-X on and programs entry i with address 0xfee00000 and data 0x40 + i, unmasked, for `count` entries. */
  enableMsix(count: number): void {
    const at = this.capsWithId(0x11)[0];
    const table = this.cfgRead(at + 4, 4);
    const bar = table & 7;
    const base = BigInt(table & ~7);
    for (let i = 0; i < count; i++) {
      const e = base + BigInt(16 * i);
      this.bus.writeBar(this.device, bar, e, 4, 0xfee0_0000);
      this.bus.writeBar(this.device, bar, e + 4n, 4, 0);
      this.bus.writeBar(this.device, bar, e + 8n, 4, 0x40 + i);
      this.bus.writeBar(this.device, bar, e + 12n, 4, 0);
    }
    this.cfgWrite(at + 2, 2, (this.cfgRead(at + 2, 2) | 0x8000) & 0xffff);
  }
}

/** A VirtioPciHost over test doubles: a TestPciBus, Interrupts over a MockVm, fake eventfds, heap memory. */
export interface PciTestHost {
  host: VirtioPciHost;
  bus: TestPciBus;
  vm: MockVm;
  hypervisor: MockHypervisor;
  interrupts: Interrupts;
  events: FakeEventSystem;
  memory: GuestMemory;
  /** A driver for the function plugged in as `att` (default: the last one). */
  driver(att?: PciAttachment): VirtioPciDriver;
}

/**
 * A VirtioPciHost wired to test doubles. `irqfd: false` (default) makes every interrupt a recorded MSI
 * (vm.msis) or line change; `ioeventfd: false` leaves notify writes trapped; `vm: false` gives no VM;
 * `logger` receives what the transport logs.
 */
export function pciTestHost(
  opts: { memorySize?: number; vm?: boolean; ioeventfd?: boolean; irqfd?: boolean; logger?: Logger } = {},
): PciTestHost {
  const hypervisor = new MockHypervisor();
  const vm = hypervisor.createVm() as MockVm;
  (vm.capabilities as { ioeventfd: boolean }).ioeventfd = opts.ioeventfd ?? true;
  (vm.capabilities as { irqfd: boolean }).irqfd = opts.irqfd ?? false;
  const events = new FakeEventSystem();
  const memory = testGuestMemory(opts.memorySize ?? 1 << 20);
  const resources = new PlatformResources(testPlatformLayout());
  const vmOf = () => (opts.vm === false ? undefined : vm);
  const interrupts = new VmInterrupts({ resources, vm: vmOf, eventFds: events.factory, eventLoop: events.loop });
  const bus = new TestPciBus({ interrupts });
  const host = new VirtioPciHost({
    pci: bus,
    interrupts,
    eventFds: events.factory,
    vm: vmOf,
    memory: () => memory,
    logger: opts.logger,
  });
  const driver = (att?: PciAttachment): VirtioPciDriver => {
    const all = bus.attachments();
    return new VirtioPciDriver(bus, att ?? all[all.length - 1]);
  };
  return { host, bus, vm, hypervisor, interrupts, events, memory, driver };
}
