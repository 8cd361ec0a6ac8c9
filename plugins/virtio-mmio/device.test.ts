import { expect } from 'chai';
import fc from 'fast-check';
import { GuestAddress } from '../../core/address.js';
import { VIRTIO_F_RING_EVENT_IDX, VIRTIO_F_RING_INDIRECT_DESC, VIRTIO_F_VERSION_1 } from '../../core/virtio/virtio.js';
import { DeviceStatus, VIRTQ_DESC_F_NEXT } from '../virtio/constants.js';
import { ECHO_DEVICE_TYPE, EchoDevice, MockSplitQueue } from '../virtio/testing.js';
import type { VirtioMmioTransport } from './device.js';
import { INT_CONFIG, INT_VRING, MMIO_MAGIC, MMIO_VENDOR_ID, Reg } from './registers.js';
import { MmioRegisterModel } from './register-model.js';
import { testGuestMemory } from '../../core/testing/test-memory.js';
import { mmioTestHost } from './testing.js';

const { ACKNOWLEDGE: ACK, DRIVER, FEATURES_OK, DRIVER_OK, DEVICE_NEEDS_RESET } = DeviceStatus;

function setup(opts: { queueSize?: number; features?: bigint } = {}) {
  const t = mmioTestHost();
  const dev = new EchoDevice('echo0', t.events.loop, opts);
  const att = t.host.attachVirtioDevice(dev);
  const transport = t.host.transports[0] as VirtioMmioTransport;
  const base = t.bus.registrations('mmio')[0].range.start.value;
  const drv = t.driverAt(base);
  const q = new MockSplitQueue(t.memory, opts.queueSize ?? 16);
  return { ...t, dev, att, transport, base, drv, q };
}

/** Adds a chain carrying `text`, with a writable buffer of `room` bytes; returns [head, writable address]. */
function addEcho(q: MockSplitQueue, text: string, room = 64): [number, bigint] {
  const data = new TextEncoder().encode(text);
  const out = q.alloc(room);
  const head = q.addChain([
    { addr: q.alloc(data.length, data), len: data.length },
    { addr: out, len: room, write: true },
  ]);
  return [head, out];
}

describe('virtio-mmio transport: driver sequence', () => {
  it('identifies itself as a version 2 device', () => {
    const { drv } = setup();
    expect(drv.read32(Reg.MagicValue)).to.equal(MMIO_MAGIC);
    expect(drv.read32(Reg.Version)).to.equal(2);
    expect(drv.read32(Reg.DeviceID)).to.equal(ECHO_DEVICE_TYPE);
    expect(drv.read32(Reg.VendorID)).to.not.equal(0);
  });

  it('negotiates, sets up the queue and activates at DRIVER_OK', () => {
    const { drv, dev, q } = setup();
    expect(drv.deviceFeatures()).to.equal(dev.deviceFeatures);
    drv.setStatus(0);
    drv.setStatus(ACK);
    drv.setStatus(ACK | DRIVER);
    drv.writeDriverFeatures(VIRTIO_F_VERSION_1 | VIRTIO_F_RING_INDIRECT_DESC);
    drv.setStatus(ACK | DRIVER | FEATURES_OK);
    expect(drv.status).to.equal(ACK | DRIVER | FEATURES_OK);
    drv.write32(Reg.QueueSel, 0);
    expect(drv.read32(Reg.QueueNumMax)).to.equal(16);
    expect(drv.read32(Reg.QueueReady)).to.equal(0);
    drv.setupQueue(0, q);
    expect(drv.read32(Reg.QueueReady)).to.equal(1);
    expect(dev.activations).to.equal(0);
    expect(drv.driverOk()).to.equal(ACK | DRIVER | FEATURES_OK | DRIVER_OK);
    expect(dev.activations).to.equal(1);
    expect(dev.activation!.features).to.equal(VIRTIO_F_VERSION_1 | VIRTIO_F_RING_INDIRECT_DESC);
    expect(dev.activation!.queues[0].size).to.equal(16);
  });

  it('notification -> device -> used ring -> interrupt, then ack', () => {
    const { drv, dev, q, events, transport } = setup();
    drv.init([q], VIRTIO_F_VERSION_1);
    const [head, out] = addEcho(q, 'hello');
    drv.notify(0); // no ioeventfd in front of this call: the bus fallback path
    expect(transport.metrics.busNotifications).to.equal(1);
    events.run();
    expect(q.readUsed()).to.deep.equal([{ id: head, len: 5 }]);
    expect(new TextDecoder().decode(q.memory.read(GuestAddress.of(out), 5))).to.equal('hello');
    expect(dev.echoed).to.equal(1);
    expect(drv.read32(Reg.InterruptStatus)).to.equal(INT_VRING);
    expect(drv.ackInterrupts()).to.equal(INT_VRING);
    expect(drv.read32(Reg.InterruptStatus)).to.equal(0);
  });

  it('serves indirect chains', () => {
    const { drv, q, events } = setup();
    drv.init([q], VIRTIO_F_VERSION_1 | VIRTIO_F_RING_INDIRECT_DESC);
    const out = q.alloc(8);
    const head = q.addIndirectChain([
      { addr: q.alloc(3, Uint8Array.from([1, 2, 3])), len: 3 },
      { addr: out, len: 8, write: true },
    ]);
    drv.notify(0);
    events.run();
    expect(q.readUsed()).to.deep.equal([{ id: head, len: 3 }]);
  });

  it('suppresses interrupts with EVENT_IDX until used_event is passed', () => {
    const { drv, q, events, transport } = setup();
    drv.init([q], VIRTIO_F_VERSION_1 | VIRTIO_F_RING_EVENT_IDX);
    q.setUsedEvent(2);
    const interrupts: number[] = [];
    for (let i = 0; i < 4; i++) {
      addEcho(q, `m${i}`);
      drv.notify(0);
      events.run();
      interrupts.push(transport.metrics.interrupts);
    }
    expect(interrupts).to.deep.equal([0, 0, 1, 1]);
    expect(q.availEvent).to.equal(4); // the device asks to be kicked for the next buffer
  });

  it('marks DEVICE_NEEDS_RESET on a bad chain, signals a config change, and recovers after reset', () => {
    const { drv, dev, q, events, transport } = setup();
    drv.init([q], VIRTIO_F_VERSION_1);
    q.writeDescriptor(q.descTable, 0, { addr: 0x20000n, len: 4, flags: VIRTQ_DESC_F_NEXT, next: 0 }); // a loop
    q.publish(0);
    drv.notify(0);
    events.run();
    expect(drv.status & DEVICE_NEEDS_RESET).to.equal(DEVICE_NEEDS_RESET);
    expect(drv.read32(Reg.InterruptStatus) & INT_CONFIG).to.equal(INT_CONFIG);
    expect(drv.read32(Reg.ConfigGeneration)).to.equal(1);
    expect(transport.metrics.needsReset).to.equal(1);
    expect(events.errors).to.deep.equal([]);
    // The driver resets and starts over with fresh rings.
    drv.setStatus(0);
    expect(drv.status).to.equal(0);
    expect(dev.resets).to.equal(1);
    expect(drv.read32(Reg.InterruptStatus)).to.equal(0);
    const q2 = new MockSplitQueue(q.memory, 16, 0x40000n);
    expect(drv.init([q2], VIRTIO_F_VERSION_1) & DEVICE_NEEDS_RESET).to.equal(0);
    const [head] = addEcho(q2, 'again');
    drv.notify(0);
    events.run();
    expect(q2.readUsed()).to.deep.equal([{ id: head, len: 5 }]);
  });

  it('refuses DRIVER_OK with a broken queue layout: NEEDS_RESET, device not activated', () => {
    const { drv, dev, q } = setup();
    drv.negotiate(VIRTIO_F_VERSION_1);
    drv.setupQueue(0, q);
    drv.write32(Reg.QueueReady, 0);
    drv.write32(Reg.QueueNum, 12); // not a power of two
    drv.write32(Reg.QueueReady, 1);
    drv.driverOk();
    expect(dev.activations).to.equal(0);
    expect(drv.status & DEVICE_NEEDS_RESET).to.equal(DEVICE_NEEDS_RESET);
  });

  it('bounds config space accesses and honours the device config size', () => {
    const { drv, dev } = setup();
    drv.negotiate(VIRTIO_F_VERSION_1);
    drv.writeConfig(4, Uint8Array.from([9, 8, 7, 6]));
    expect([...dev.config.subarray(4, 8)]).to.deep.equal([9, 8, 7, 6]);
    expect([...drv.readConfig(4, 4)]).to.deep.equal([9, 8, 7, 6]);
    expect([...drv.readConfig(6, 4)]).to.deep.equal([0, 0, 0, 0]); // runs past 8 bytes
    expect([...drv.readConfig(0x800, 4)]).to.deep.equal([0, 0, 0, 0]);
    drv.writeConfig(6, Uint8Array.from([1, 1, 1, 1]));
    expect([...dev.config.subarray(4, 8)]).to.deep.equal([9, 8, 7, 6]);
  });

  it('signalConfigChange bumps ConfigGeneration and raises the config interrupt', () => {
    const { drv, att, q } = setup();
    drv.init([q]);
    att.interrupt.signalConfigChange();
    expect(drv.read32(Reg.ConfigGeneration)).to.equal(1);
    expect(drv.read32(Reg.InterruptStatus)).to.equal(INT_CONFIG);
  });
});

describe('virtio-mmio transport: hostile register sequences', () => {
  it('ignores accesses of the wrong size and writes to read-only registers', () => {
    const { drv, transport } = setup();
    for (const size of [1, 2, 8]) {
      const d = new Uint8Array(size).fill(0xff);
      transport.read(BigInt(Reg.MagicValue), d);
      expect([...d]).to.deep.equal(new Array(size).fill(0));
      transport.write(BigInt(Reg.Status), new Uint8Array(size).fill(1));
    }
    expect(drv.status).to.equal(0);
    drv.write32(Reg.MagicValue, 0);
    drv.write32(Reg.QueueNumMax, 1);
    drv.write32(Reg.InterruptStatus, 3);
    drv.write32(0x0f0, 1); // unknown
    expect(drv.read32(Reg.MagicValue)).to.equal(MMIO_MAGIC);
    expect(transport.metrics.ignoredAccesses).to.be.greaterThan(5);
  });

  it('refuses FEATURES_OK without VERSION_1 or with features not offered', () => {
    const { drv } = setup({ features: VIRTIO_F_VERSION_1 });
    expect(drv.negotiate(0n) & FEATURES_OK).to.equal(0);
    expect(drv.negotiate(VIRTIO_F_VERSION_1 | VIRTIO_F_RING_EVENT_IDX) & FEATURES_OK).to.equal(0);
    expect(drv.negotiate(VIRTIO_F_VERSION_1) & FEATURES_OK).to.equal(FEATURES_OK);
  });

  it('ignores out-of-order status bits and queue setup outside its phase', () => {
    const { drv, dev, q, transport } = setup();
    drv.setStatus(DRIVER); // without ACKNOWLEDGE
    expect(drv.status).to.equal(0);
    drv.setStatus(ACK | DRIVER | FEATURES_OK | DRIVER_OK); // all at once, no features accepted
    expect(drv.status).to.equal(ACK | DRIVER);
    drv.setupQueue(0, q); // before FEATURES_OK: ignored
    expect(drv.read32(Reg.QueueReady)).to.equal(0);
    drv.setStatus(ACK | DRIVER | DRIVER_OK); // DRIVER_OK without FEATURES_OK
    expect(drv.status).to.equal(ACK | DRIVER);
    expect(dev.activations).to.equal(0);
    expect(transport.metrics.refusedStatusWrites).to.be.greaterThan(1);
  });

  it('ignores queue layout writes while the queue is ready and after DRIVER_OK', () => {
    const { drv, q, transport } = setup();
    drv.negotiate(VIRTIO_F_VERSION_1);
    drv.setupQueue(0, q);
    drv.write32(Reg.QueueDescLow, 0x1234);
    drv.write32(Reg.QueueNum, 4);
    expect(transport.queues[0].descTable).to.equal(q.descTable);
    expect(transport.queues[0].size).to.equal(16);
    drv.driverOk();
    drv.write32(Reg.QueueReady, 0);
    expect(drv.read32(Reg.QueueReady)).to.equal(1);
  });

  it('answers QueueNumMax 0 for a queue that does not exist and ignores notifies for it', () => {
    const { drv, q, events } = setup();
    drv.init([q]);
    drv.write32(Reg.QueueSel, 7);
    expect(drv.read32(Reg.QueueNumMax)).to.equal(0);
    drv.write32(Reg.QueueNum, 8);
    drv.notify(7);
    drv.notify(0xffff_ffff);
    expect(events.run()).to.equal(0);
  });

  it('ignores a driver clearing status bits, and a notify before DRIVER_OK', () => {
    const { drv, q, events } = setup();
    drv.negotiate(VIRTIO_F_VERSION_1);
    drv.setStatus(ACK);
    expect(drv.status).to.equal(ACK | DRIVER | FEATURES_OK);
    drv.setupQueue(0, q);
    addEcho(q, 'x');
    drv.notify(0);
    expect(events.run()).to.equal(0);
  });

  it('contains exceptions thrown by the device model (config access, activation)', () => {
    const t = mmioTestHost();
    const dev = new EchoDevice('boom', t.events.loop);
    dev.readConfig = () => {
      throw new Error('config bug');
    };
    dev.writeConfig = () => {
      throw new Error('config bug');
    };
    dev.activate = () => {
      throw new Error('activate bug');
    };
    t.host.attachVirtioDevice(dev);
    const drv = t.driverAt(t.bus.registrations('mmio')[0].range.start.value);
    const q = new MockSplitQueue(t.memory, 16);
    drv.negotiate(VIRTIO_F_VERSION_1);
    expect([...drv.readConfig(0, 4)]).to.deep.equal([0, 0, 0, 0]);
    drv.writeConfig(4, Uint8Array.from([1, 2, 3, 4]));
    drv.setupQueue(0, q);
    drv.driverOk();
    expect(drv.status & DEVICE_NEEDS_RESET).to.equal(DEVICE_NEEDS_RESET);
    drv.setStatus(0);
    expect(drv.status).to.equal(0);
  });

  it('2,000 random and driver-like access sequences: each read is what a register model predicts', function () {
    this.timeout(180_000); // ~130,000 checked reads; seconds on an idle machine
    type Access = { write: boolean; offset: number; size: number; value: number };
    const raw = fc
      .record({
        write: fc.boolean(),
        offset: fc.oneof(
          fc.constantFrom(...Object.values(Reg), 0x100, 0x104, 0x1ff, 0xffc),
          fc.integer({ min: 0, max: 0xfff }),
        ),
        size: fc.constantFrom(1, 2, 4, 4, 4, 8),
        value: fc.oneof(fc.integer({ min: 0, max: 0xff }), fc.integer({ min: 0, max: 0xffff_ffff })),
      })
      .map((a) => [a]);
    const w = (offset: number, value: number): Access => ({ write: true, offset, size: 4, value });
    const r = (offset: number): Access => ({ write: false, offset, size: 4, value: 0 });
    const addr = fc.integer({ min: 0, max: 0x10_0000 });
    // the layout of the queue the echo chain is in (MockSplitQueue's places are fixed for a size and base)
    const echo = new MockSplitQueue(testGuestMemory(1 << 20), 16);
    const echoLayout = { size: 16, descTable: echo.descTable, availRing: echo.availRing, usedRing: echo.usedRing };
    const layout = fc.oneof(
      { weight: 3, arbitrary: fc.constant(echoLayout) },
      {
        weight: 2,
        arbitrary: fc
          .record({ size: fc.constantFrom(0, 3, 8, 16, 32), desc: addr, avail: addr, used: addr })
          .map((l) => ({
            size: l.size,
            descTable: BigInt(l.desc),
            availRing: BigInt(l.avail),
            usedRing: BigInt(l.used),
          })),
      },
    );
    // a driver's start-up, with feature words and a queue layout that may or may not be acceptable
    const word = fc.integer({ min: 0, max: 0xffff_ffff });
    const startUp = fc
      .tuple(word, fc.constantFrom(1, 1, 1, 0, 3), layout, fc.constantFrom(true, true, true, false))
      .map(([low, high, q, ready]): Access[] => {
        const lowWord = (low & Number(echoFeatures & 0xffff_ffffn)) | (low % 7 === 0 ? 0x8000_0000 : 0);
        return [
          w(Reg.Status, 0),
          w(Reg.Status, ACK),
          w(Reg.Status, ACK | DRIVER),
          r(Reg.DeviceFeatures),
          w(Reg.DriverFeaturesSel, 0),
          w(Reg.DriverFeatures, lowWord),
          w(Reg.DriverFeaturesSel, 1),
          w(Reg.DriverFeatures, high),
          w(Reg.Status, ACK | DRIVER | FEATURES_OK),
          r(Reg.Status),
          w(Reg.QueueSel, 0),
          w(Reg.QueueNum, q.size),
          w(Reg.QueueDescLow, Number(q.descTable)),
          w(Reg.QueueDriverLow, Number(q.availRing)),
          w(Reg.QueueDeviceLow, Number(q.usedRing)),
          w(Reg.QueueReady, ready ? 1 : 0),
          r(Reg.QueueReady),
          w(Reg.Status, ACK | DRIVER | FEATURES_OK | DRIVER_OK),
          r(Reg.Status),
          r(Reg.InterruptStatus),
        ];
      });
    const kickAndAck = fc.constant<Access[]>([
      w(Reg.QueueNotify, 0),
      r(Reg.InterruptStatus),
      w(Reg.InterruptACK, INT_VRING | INT_CONFIG),
      r(Reg.InterruptStatus),
    ]);
    const echoFeatures = VIRTIO_F_VERSION_1 | VIRTIO_F_RING_INDIRECT_DESC | VIRTIO_F_RING_EVENT_IDX;
    const totals = { reads: 0, activations: 0, failedActivations: 0, vringRaised: 0, featuresRefused: 0 };
    const bytes = (a: Access) => {
      const d = new Uint8Array(a.size);
      d.set(new Uint8Array(new Uint32Array([a.value]).buffer).subarray(0, Math.min(4, a.size)));
      return d;
    };
    const sequence = fc.array(
      fc.oneof({ weight: 6, arbitrary: raw }, { weight: 1, arbitrary: startUp }, { weight: 2, arbitrary: kickAndAck }),
      { maxLength: 40 },
    );
    fc.assert(
      fc.property(sequence, (groups) => {
        const { transport, events, memory, dev } = setup({ features: echoFeatures });
        const echoQueue = new MockSplitQueue(memory, 16);
        expect(echoQueue.descTable).to.equal(echo.descTable);
        addEcho(echoQueue, 'junk');
        const model = new MmioRegisterModel({
          deviceType: ECHO_DEVICE_TYPE,
          vendorId: MMIO_VENDOR_ID,
          features: echoFeatures,
          queueMax: [16],
          configSize: 8,
          memorySize: 1 << 20,
        });
        const check = (a: Access) => {
          if (a.write) {
            const d = bytes(a);
            transport.write(BigInt(a.offset), d);
            model.write(a.offset, d);
          } else {
            const d = new Uint8Array(a.size);
            transport.read(BigInt(a.offset), d);
            totals.reads++;
            const want = model.read(a.offset, a.size, dev.echoed);
            expect([...d], `read ${a.size} at 0x${a.offset.toString(16)}`).to.deep.equal([...want]);
          }
          events.run();
          const { interrupts, needsReset } = transport.metrics;
          const drift = model.deviceActed({ interrupts, needsResets: needsReset });
          expect(drift, `after ${a.write ? 'write' : 'read'} at 0x${a.offset.toString(16)}`).to.equal(undefined);
        };
        for (const g of groups) for (const a of g) check(a);
        // every register, for every queue selector, at the end
        for (const sel of [0, 1]) {
          check(w(Reg.QueueSel, sel));
          for (const off of [...Object.values(Reg).filter((o) => o < Reg.Config), 0x100, 0x104]) check(r(off));
        }
        expect(events.errors).to.deep.equal([]);
        for (const k of ['activations', 'failedActivations', 'vringRaised', 'featuresRefused'] as const) {
          totals[k] += model.seen[k];
        }
      }),
      { numRuns: 2000 },
    );
    // the sequences reach each behaviour often, or the model proves little
    expect(totals.activations).to.be.greaterThan(100);
    expect(totals.failedActivations).to.be.greaterThan(100);
    expect(totals.vringRaised).to.be.greaterThan(50);
    expect(totals.featuresRefused).to.be.greaterThan(50);
  });
});

describe('virtio-mmio transport: counters (contract C4)', () => {
  it("lists the device's own counters and its transport counters under transport.", () => {
    const { transport, dev, drv } = setup();
    (dev as unknown as { counters: () => Record<string, number> }).counters = () => ({ echoed: 7 });
    drv.write32(0x800, 1); // an offset the transport does not know: ignored and counted
    const c = transport.counters();
    expect(c.echoed).to.equal(7);
    expect(c['transport.ignoredAccesses']).to.be.greaterThan(0);
    expect(c['transport.interrupts']).to.equal(0);
  });
});
