import { expect } from 'chai';
import { GuestAddress } from '../../core/address.js';
import { VIRTIO_F_RING_EVENT_IDX, VIRTIO_F_VERSION_1 } from '../../core/virtio/virtio.js';
import { DeviceStatus, VIRTQ_DESC_F_NEXT } from '../virtio/constants.js';
import { EchoDevice, MockSplitQueue } from '../virtio/testing.js';
import type { VirtioPciFunction } from './function.js';
import { CfgType, Common, NOTIFY_OFF_MULTIPLIER, Region, VIRTIO_BAR_SIZE, VIRTIO_MSI_NO_VECTOR } from './layout.js';
import { pciTestHost } from './testing.js';

/** The echo device under a type PCI device ids can carry (0x1040 + 63 = 0x107f, the range's last). */
const ECHO_TYPE = 63;
const { ACKNOWLEDGE: ACK, DRIVER, FEATURES_OK, DRIVER_OK, DEVICE_NEEDS_RESET } = DeviceStatus;

/** A warn-collecting logger: the refusals the transport logs. */
function warnLog(): { lines: string[]; logger: never } {
  const lines: string[] = [];
  const logger = {
    warn: (_o: unknown, msg: string) => lines.push(msg),
    info: () => {},
    debug: () => {},
    error: () => {},
    child: () => logger,
  };
  return { lines, logger: logger as never };
}

function setup(opts: { queueSize?: number; ioeventfd?: boolean; irqfd?: boolean; queues?: number } = {}) {
  const log = warnLog();
  const t = pciTestHost({ ioeventfd: opts.ioeventfd, irqfd: opts.irqfd, logger: log.logger });
  const dev = new EchoDevice('echo0', t.events.loop, { queueSize: opts.queueSize, deviceType: ECHO_TYPE });
  const att = t.host.attachVirtioDevice(dev);
  const fn = t.host.functions[0] as VirtioPciFunction;
  const drv = t.driver();
  const q = new MockSplitQueue(t.memory, opts.queueSize ?? 16);
  return { ...t, dev, att, fn, drv, q, log };
}

/** Adds a chain carrying `text` with a writable buffer; returns [head, writable address]. */
function addEcho(q: MockSplitQueue, text: string, room = 64): [number, bigint] {
  const data = new TextEncoder().encode(text);
  const out = q.alloc(room);
  const head = q.addChain([
    { addr: q.alloc(data.length, data), len: data.length },
    { addr: out, len: room, write: true },
  ]);
  return [head, out];
}

describe('virtio-pci function: identity and capabilities', () => {
  it('is a modern virtio PCI function: ids, revision, class, subsystem, pin A', () => {
    const { drv } = setup();
    expect(drv.cfgRead(0x00, 2)).to.equal(0x1af4);
    expect(drv.cfgRead(0x02, 2)).to.equal(0x1040 + ECHO_TYPE);
    expect(drv.cfgRead(0x08, 1)).to.equal(1);
    expect(drv.cfgRead(0x08, 4) >>> 8).to.equal(0xff0000); // class: unassigned
    expect(drv.cfgRead(0x2c, 2)).to.equal(0x1af4);
    expect(drv.cfgRead(0x2e, 2)).to.be.at.least(0x40);
    expect(drv.cfgRead(0x3d, 1)).to.equal(1);
  });

  it('lists common, notify, ISR, device and PCI-config capabilities into BAR 0, and MSI-X', () => {
    const { drv } = setup();
    const types = drv.caps.map((c) => c.cfgType);
    expect(types).to.have.members([CfgType.common, CfgType.notify, CfgType.isr, CfgType.device, CfgType.pciCfg]);
    for (const c of drv.caps.filter((x) => x.cfgType !== CfgType.pciCfg)) {
      expect(c.bar).to.equal(0);
      expect(BigInt(c.offset + c.length) <= VIRTIO_BAR_SIZE).to.equal(true);
    }
    expect(drv.cap(CfgType.common).length).to.be.at.least(0x38);
    expect(drv.cap(CfgType.notify).notifyOffMultiplier).to.equal(NOTIFY_OFF_MULTIPLIER);
    expect(drv.cap(CfgType.device).length).to.equal(8); // EchoDevice's config size
    const msix = drv.capsWithId(0x11);
    expect(msix).to.have.length(1);
    expect((drv.cfgRead(msix[0] + 2, 2) & 0x7ff) + 1).to.equal(2); // one queue + config
    expect(drv.cfgRead(msix[0] + 4, 4)).to.equal(Region.msixTable.offset); // BIR 0
    expect(drv.cfgRead(msix[0] + 8, 4)).to.equal(Region.msixPba.offset);
  });

  it('answers BAR sizing as hardware does: a 64-bit prefetchable 64 KiB BAR', () => {
    const { drv } = setup();
    drv.cfgWrite(0x04, 2, 0); // decode off while sizing, as Linux does
    drv.cfgWrite(0x10, 4, 0xffff_ffff);
    drv.cfgWrite(0x14, 4, 0xffff_ffff);
    expect(drv.cfgRead(0x10, 4) >>> 0).to.equal(((0xffff_ffff & ~(Number(VIRTIO_BAR_SIZE) - 1)) | 0xc) >>> 0);
    expect(drv.cfgRead(0x14, 4) >>> 0).to.equal(0xffff_ffff);
  });
});

describe('virtio-pci function: a driver through configuration space and the BAR', () => {
  it('negotiates features, sets up the queue and activates at DRIVER_OK', () => {
    const { drv, dev, q } = setup();
    expect(drv.deviceFeatures()).to.equal(dev.deviceFeatures);
    expect(drv.common(Common.numQueues, 2)).to.equal(1);
    expect(drv.negotiate(VIRTIO_F_VERSION_1 | VIRTIO_F_RING_EVENT_IDX)).to.equal(ACK | DRIVER | FEATURES_OK);
    drv.setCommon(Common.queueSelect, 2, 0);
    expect(drv.common(Common.queueSize, 2)).to.equal(16);
    expect(drv.common(Common.queueNotifyOff, 2)).to.equal(0);
    expect(drv.common(Common.queueMsixVector, 2)).to.equal(VIRTIO_MSI_NO_VECTOR);
    drv.setupQueue(0, q, 1);
    expect(drv.common(Common.queueEnable, 2)).to.equal(1);
    expect(BigInt(drv.common(Common.queueDesc, 4)) | (BigInt(drv.common(Common.queueDesc + 4, 4)) << 32n)).to.equal(
      q.descTable,
    );
    expect(dev.activations).to.equal(0);
    expect(drv.driverOk()).to.equal(ACK | DRIVER | FEATURES_OK | DRIVER_OK);
    expect(dev.activations).to.equal(1);
    expect(dev.activation!.features).to.equal(VIRTIO_F_VERSION_1 | VIRTIO_F_RING_EVENT_IDX);
  });

  it('refuses FEATURES_OK without VERSION_1 (the driver reads it back clear)', () => {
    const { drv } = setup();
    expect(drv.negotiate(0n) & FEATURES_OK).to.equal(0);
  });

  it('device configuration: reads through the BAR, writes need DRIVER', () => {
    const { drv } = setup();
    drv.write(CfgType.device, 4, 4, 0x1234_5678);
    expect(Number(drv.read(CfgType.device, 4, 4))).to.equal(0); // before DRIVER: dropped
    drv.negotiate();
    drv.write(CfgType.device, 4, 4, 0x1234_5678);
    expect(Number(drv.read(CfgType.device, 4, 4))).to.equal(0x1234_5678);
    expect(Number(drv.read(CfgType.device, 8, 4))).to.equal(0); // past the config size
  });

  it('MSI-X: a used buffer raises the queue vector, a config change the config vector', () => {
    const { drv, q, events, vm, fn } = setup({ ioeventfd: false });
    drv.enableMsix(2);
    drv.negotiate(VIRTIO_F_VERSION_1);
    drv.setCommon(Common.msixConfig, 2, 0);
    expect(drv.common(Common.msixConfig, 2)).to.equal(0);
    drv.setupQueue(0, q, 1);
    drv.driverOk();
    const [head, out] = addEcho(q, 'hello');
    drv.notify(0); // no ioeventfd: the trapped path
    expect(fn.transport.metrics.busNotifications).to.equal(1);
    events.run();
    expect(q.readUsed()).to.deep.equal([{ id: head, len: 5 }]);
    expect(new TextDecoder().decode(q.memory.read(GuestAddress.of(out), 5))).to.equal('hello');
    expect(vm.msis).to.deep.equal([{ address: 0xfee0_0000n, data: 0x41 }]);
    expect(drv.isr()).to.equal(0); // MSI-X: the ISR is not used
    fn.transport.interrupt.signalConfigChange();
    expect(vm.msis.at(-1)).to.deep.equal({ address: 0xfee0_0000n, data: 0x40 });
    expect(drv.common(Common.configGeneration, 1)).to.equal(1);
    const c = fn.counters();
    expect([c['transport.interrupts'], c['transport.busNotifications'], c['transport.activations']]).to.deep.equal([
      2, 1, 1,
    ]);
  });

  it('hands the device the irqfd of each queue vector as its call eventfd (vhost-user); none in INTx mode', () => {
    const m = setup({ irqfd: true });
    m.drv.enableMsix(2);
    m.drv.negotiate(VIRTIO_F_VERSION_1);
    m.drv.setupQueue(0, m.q, 1);
    m.drv.driverOk();
    const route = m.vm.routes.find((r) => r.kind === 'msi' && r.data === 0x41)!; // vector 1's message
    const irqfd = m.vm.irqfds.find((f) => f.gsi === route.gsi)!;
    expect(m.dev.activation!.callEvents).to.have.length(1);
    expect(m.dev.activation!.callEvents![0]?.fd).to.equal(irqfd.fd);
    const x = setup({ irqfd: true });
    x.drv.negotiate(VIRTIO_F_VERSION_1);
    x.drv.setupQueue(0, x.q);
    x.drv.driverOk();
    expect(x.dev.activation!.callEvents).to.deep.equal([undefined]);
  });

  it('MSI-X: a masked vector holds its interrupt as pending (PBA) and delivers it on unmask', () => {
    const { drv, q, events, vm, bus } = setup({ ioeventfd: false });
    drv.enableMsix(2);
    drv.negotiate(VIRTIO_F_VERSION_1);
    drv.setupQueue(0, q, 1);
    drv.driverOk();
    const entry1 = BigInt(Region.msixTable.offset + 16 + 12);
    bus.writeBar(drv.device, 0, entry1, 4, 1); // mask vector 1
    addEcho(q, 'x');
    drv.notify(0);
    events.run();
    expect(vm.msis).to.deep.equal([]);
    expect(bus.readBar(drv.device, 0, BigInt(Region.msixPba.offset), 8)).to.equal(0b10n);
    bus.writeBar(drv.device, 0, entry1, 4, 0);
    expect(vm.msis).to.deep.equal([{ address: 0xfee0_0000n, data: 0x41 }]);
  });

  it('INTx when MSI-X is off: ISR bit and level line; reading the ISR clears it and drops the line', () => {
    const { drv, q, events, vm } = setup({ ioeventfd: false });
    drv.negotiate(VIRTIO_F_VERSION_1);
    drv.setupQueue(0, q);
    drv.driverOk();
    addEcho(q, 'intx');
    drv.notify(0);
    events.run();
    expect(vm.msis).to.deep.equal([]);
    const gsi = [...vm.irqLines.keys()][0];
    expect(vm.irqLines.get(gsi)).to.equal(true);
    expect(drv.cfgRead(0x06, 2) & 0x8).to.equal(0x8); // status: interrupt asserted
    expect(drv.isr()).to.equal(1);
    expect(vm.irqLines.get(gsi)).to.equal(false);
    expect(drv.isr()).to.equal(0);
  });

  it('INTx over an irqfd with resample: re-asserted at the EOI while the ISR is set, not once read', () => {
    const { drv, q, events, hypervisor, fn } = setup({ ioeventfd: false, irqfd: true });
    drv.negotiate(VIRTIO_F_VERSION_1);
    drv.setupQueue(0, q);
    drv.driverOk();
    const [line, , resampleFd] = hypervisor.callsTo('vm', 'registerIrqfd').find((c) => c.args[2] !== undefined)!.args;
    const fd = (n: unknown) => events.factory.created.find((e) => e.fd === n)!;
    const eoi = (): void => {
      fd(resampleFd).write(1n);
      events.run();
    };
    addEcho(q, 'intx');
    drv.notify(0);
    events.run();
    expect(fd(line).read()).to.equal(1n); // asserted
    eoi(); // the guest's EOI before it read the ISR: asserted again
    expect(fd(line).read()).to.equal(1n);
    expect(drv.isr()).to.equal(1);
    eoi();
    expect(fd(line).read()).to.equal(0n);
    fn.transport.interrupt.signalConfigChange();
    expect(fd(line).read()).to.equal(1n);
    expect(drv.isr()).to.equal(2);
  });

  it('INTx disabled in the command register keeps the line low', () => {
    const { drv, q, events, vm } = setup({ ioeventfd: false });
    drv.cfgWrite(0x04, 2, drv.cfgRead(0x04, 2) | 0x400);
    drv.negotiate(VIRTIO_F_VERSION_1);
    drv.setupQueue(0, q);
    drv.driverOk();
    addEcho(q, 'x');
    drv.notify(0);
    events.run();
    expect([...vm.irqLines.values()].some((v) => v)).to.equal(false);
    expect(drv.isr()).to.equal(1);
  });

  it('notify ioeventfds sit at the BAR (2 bytes, datamatch = queue) and move with it', () => {
    const { drv, vm } = setup();
    const base = drv.barBase();
    expect(vm.ioeventfds.map((r) => r.at)).to.deep.equal([
      { space: 'mmio', address: base + BigInt(Region.notify.offset), length: 2, datamatch: 0n },
    ]);
    const moved = base + 0x100_0000n;
    drv.cfgWrite(0x10, 4, Number(moved & 0xffff_fff0n) | 0);
    drv.cfgWrite(0x14, 4, Number(moved >> 32n));
    expect(drv.barBase()).to.equal(moved);
    expect(vm.ioeventfds.map((r) => r.at.address)).to.deep.equal([moved + BigInt(Region.notify.offset)]);
    drv.cfgWrite(0x04, 2, 0); // memory decode off: no window, no ioeventfd
    expect(vm.ioeventfds).to.deep.equal([]);
  });

  it('device reset by status 0: vectors back to NO_VECTOR, device reset, queues idle', () => {
    const { drv, dev, q } = setup();
    drv.enableMsix(2);
    drv.negotiate(VIRTIO_F_VERSION_1);
    drv.setCommon(Common.msixConfig, 2, 0);
    drv.setupQueue(0, q, 1);
    drv.driverOk();
    drv.setStatus(0);
    expect(drv.status).to.equal(0);
    expect(dev.resets).to.equal(1);
    expect(drv.common(Common.msixConfig, 2)).to.equal(VIRTIO_MSI_NO_VECTOR);
    expect(drv.common(Common.queueMsixVector, 2)).to.equal(VIRTIO_MSI_NO_VECTOR);
    expect(drv.common(Common.queueEnable, 2)).to.equal(0);
  });

  it('marks DEVICE_NEEDS_RESET on a broken chain and tells the driver through the config vector', () => {
    const { drv, q, events, vm } = setup({ ioeventfd: false });
    drv.enableMsix(2);
    drv.negotiate(VIRTIO_F_VERSION_1);
    drv.setCommon(Common.msixConfig, 2, 0);
    drv.setupQueue(0, q, 1);
    drv.driverOk();
    q.writeDescriptor(q.descTable, 0, { addr: 0x20000n, len: 4, flags: VIRTQ_DESC_F_NEXT, next: 0 }); // a loop
    q.publish(0);
    drv.notify(0);
    events.run();
    expect(drv.status & DEVICE_NEEDS_RESET).to.equal(DEVICE_NEEDS_RESET);
    expect(vm.msis.at(-1)).to.deep.equal({ address: 0xfee0_0000n, data: 0x40 });
  });

  it('bus mastering turned off with a request in flight: no DMA, no MSI-X; the device needs a reset', () => {
    const { drv, dev, q, events, vm } = setup({ ioeventfd: false });
    drv.enableMsix(2);
    drv.negotiate(VIRTIO_F_VERSION_1);
    drv.setCommon(Common.msixConfig, 2, 0);
    drv.setupQueue(0, q, 1);
    drv.driverOk();
    const [, out] = addEcho(q, 'hello');
    drv.notify(0);
    drv.cfgWrite(0x04, 2, 0x0002); // memory decode kept, bus master off (PCI 3.0 6.2.2: no memory requests)
    events.run();
    expect(q.readUsed(), 'nothing used').to.deep.equal([]);
    expect(q.memory.read(GuestAddress.of(out), 5), 'guest memory untouched').to.deep.equal(new Uint8Array(5));
    expect(vm.msis, 'no MSI-X message, not even the config vector').to.deep.equal([]);
    expect(dev.resets).to.equal(1);
    expect(drv.status & DEVICE_NEEDS_RESET).to.equal(DEVICE_NEEDS_RESET);
    drv.cfgWrite(0x04, 2, 0x0006); // back on: the device stays stopped until the driver resets it
    drv.notify(0);
    events.run();
    expect(q.readUsed()).to.deep.equal([]);
    const q2 = new MockSplitQueue(q.memory, 16);
    drv.negotiate(VIRTIO_F_VERSION_1);
    drv.setupQueue(0, q2, 1);
    expect(drv.driverOk() & DEVICE_NEEDS_RESET).to.equal(0);
    const [head] = addEcho(q2, 'again');
    drv.notify(0);
    events.run();
    expect(q2.readUsed()).to.deep.equal([{ id: head, len: 5 }]);
    expect(vm.msis).to.deep.equal([{ address: 0xfee0_0000n, data: 0x41 }]);
  });

  it('the PCI configuration access capability reads and writes the BAR', () => {
    const { drv } = setup();
    const c = drv.cap(CfgType.pciCfg);
    drv.cfgWrite(c.at + 4, 1, 0); // bar
    drv.cfgWrite(c.at + 8, 4, Region.common.offset + Common.numQueues);
    drv.cfgWrite(c.at + 12, 4, 2);
    expect(drv.cfgRead(c.at + 16, 4) & 0xffff).to.equal(1);
    drv.cfgWrite(c.at + 8, 4, Region.common.offset + Common.deviceStatus);
    drv.cfgWrite(c.at + 12, 4, 1);
    drv.cfgWrite(c.at + 16, 4, ACK);
    expect(drv.status).to.equal(ACK);
    drv.cfgWrite(c.at + 8, 4, 0x1_0001); // outside the BAR: nothing happens
    drv.cfgWrite(c.at + 16, 4, 0xff);
    expect(drv.status).to.equal(ACK);
  });

  it('detach unplugs the function: windows, ioeventfds and vectors go; the slot is free again', () => {
    const t = setup();
    t.drv.enableMsix(2);
    t.att.dispose();
    expect(t.bus.attachments()).to.have.length(0);
    expect(t.vm.ioeventfds).to.deep.equal([]);
    const again = t.host.attachVirtioDevice(new EchoDevice('echo1', t.events.loop, { deviceType: ECHO_TYPE }));
    expect(again.location).to.equal('pci 0000:00:01.0');
  });
});

describe('virtio-pci function: hostile drivers', () => {
  it('queue size and addresses after DRIVER_OK are refused with a logged line', () => {
    const { drv, q, log, fn } = setup();
    drv.negotiate(VIRTIO_F_VERSION_1);
    drv.setupQueue(0, q);
    drv.driverOk();
    drv.setCommon(Common.queueSize, 2, 4);
    drv.setCommon(Common.queueDesc, 4, 0x8000);
    expect(drv.common(Common.queueSize, 2)).to.equal(16);
    expect(drv.common(Common.queueDesc, 4)).to.equal(Number(q.descTable & 0xffff_ffffn));
    expect(fn.transport.metrics.refusedWrites).to.equal(2);
    expect(log.lines.filter((l) => /refused a layout write for queue 0/.test(l))).to.have.length(2);
  });

  it('a queue size above the maximum, or 0, is refused; a non-power-of-two fails at DRIVER_OK', () => {
    const { drv, q, log } = setup();
    drv.negotiate(VIRTIO_F_VERSION_1);
    drv.setCommon(Common.queueSize, 2, 32);
    drv.setCommon(Common.queueSize, 2, 0);
    expect(drv.common(Common.queueSize, 2)).to.equal(16);
    expect(log.lines.filter((l) => /queue_size/.test(l))).to.have.length(2);
    drv.setupQueue(0, q);
    drv.setCommon(Common.queueSelect, 2, 0);
    expect(drv.common(Common.queueSize, 2)).to.equal(16);
    const odd = setup();
    odd.drv.negotiate(VIRTIO_F_VERSION_1);
    odd.drv.setupQueue(0, new MockSplitQueue(odd.memory, 12));
    odd.drv.driverOk();
    expect(odd.drv.status & DEVICE_NEEDS_RESET).to.equal(DEVICE_NEEDS_RESET);
    expect(odd.dev.activations).to.equal(0);
    expect(odd.log.lines.some((l) => /needs reset/.test(l))).to.equal(true);
  });

  it('vectors outside the MSI-X table read back NO_VECTOR, logged; a missing queue is refused', () => {
    const { drv, log } = setup();
    drv.enableMsix(2);
    drv.negotiate(VIRTIO_F_VERSION_1);
    drv.setCommon(Common.msixConfig, 2, 7);
    expect(drv.common(Common.msixConfig, 2)).to.equal(VIRTIO_MSI_NO_VECTOR);
    drv.setCommon(Common.queueSelect, 2, 0);
    drv.setCommon(Common.queueMsixVector, 2, 2);
    expect(drv.common(Common.queueMsixVector, 2)).to.equal(VIRTIO_MSI_NO_VECTOR);
    drv.setCommon(Common.queueSelect, 2, 5);
    drv.setCommon(Common.queueMsixVector, 2, 0);
    expect(drv.common(Common.queueSize, 2)).to.equal(0);
    expect(drv.common(Common.queueMsixVector, 2)).to.equal(VIRTIO_MSI_NO_VECTOR);
    expect(log.lines.filter((l) => /msix_config 7|queue_msix_vector of queue 0 2|queue 5/.test(l))).to.have.length(3);
  });

  it('wrong widths, read-only fields, offsets between regions and past the BAR are ignored', () => {
    const { drv, fn, bus } = setup();
    drv.negotiate(VIRTIO_F_VERSION_1);
    const before = fn.transport.metrics.ignoredAccesses;
    drv.setCommon(Common.deviceStatus, 4, 0); // a 4-byte write at the 1-byte status: ignored
    expect(drv.status).to.equal(ACK | DRIVER | FEATURES_OK);
    drv.setCommon(Common.numQueues, 2, 9);
    expect(drv.common(Common.numQueues, 2)).to.equal(1);
    expect(drv.common(0x100, 4)).to.equal(0);
    for (const off of [0x1008n, 0x2008n, 0x3ffen]) {
      bus.writeBar(drv.device, 0, off, 8, 0xaaaa_aaaa_aaaa_aaaan);
      expect(bus.readBar(drv.device, 0, off, 8)).to.equal(0n);
    }
    for (const off of [0xd000n, 0xfff8n]) {
      bus.writeBar(drv.device, 0, off, 8, 0xaaaa_aaaa_aaaa_aaaan); // between regions: nothing there
      expect(bus.readBar(drv.device, 0, off, 8)).to.equal(0n);
    }
    expect(fn.transport.metrics.ignoredAccesses).to.be.greaterThan(before + 3);
    expect(drv.status).to.equal(ACK | DRIVER | FEATURES_OK);
  });

  it('queue_enable 0 and writes to a queue that does not exist are refused', () => {
    const { drv, q, fn } = setup();
    drv.negotiate(VIRTIO_F_VERSION_1);
    drv.setupQueue(0, q);
    drv.setCommon(Common.queueEnable, 2, 0);
    expect(drv.common(Common.queueEnable, 2)).to.equal(1);
    drv.setCommon(Common.queueSelect, 2, 3);
    drv.setCommon(Common.queueDesc, 4, 0x1000);
    expect(drv.common(Common.queueDesc, 4)).to.equal(0);
    expect(fn.transport.metrics.refusedWrites).to.equal(2);
  });
});
