import { expect } from 'chai';
import { z } from 'zod';
import { GuestAddress } from '../../core/address.js';
import { StateError } from '../../core/state/errors.js';
import { restoreSnapshot, takeSnapshot } from '../../core/state/persist.js';
import { defineState, type SavedState, type Snapshottable } from '../../core/state/snapshottable.js';
import { hostileStateProblems, roundTripState, withData } from '../../core/testing/state.js';
import { VIRTIO_F_RING_EVENT_IDX, VIRTIO_F_VERSION_1, type VirtioActivation } from '../../core/virtio/virtio.js';
import { DeviceStatus } from '../virtio/constants.js';
import { EchoDevice, MockSplitQueue, type FakeEventSystem } from '../virtio/testing.js';
import type { VirtioMmioTransport } from './device.js';
import { INT_VRING, Reg } from './registers.js';
import { mmioTestHost } from './testing.js';

const { ACKNOWLEDGE: ACK, DRIVER, FEATURES_OK, DRIVER_OK } = DeviceStatus;

const NoteSpec = defineState({ name: 'echo note', version: 1, schema: z.strictObject({ note: z.number().int() }) });

/** An echo device with a state of its own, recording when it was loaded relative to activation. */
class NotedEcho extends EchoDevice implements Snapshottable<{ note: number }> {
  readonly stateSpec = NoteSpec;
  note = 0;
  readonly order: string[] = [];
  saveState(): { note: number } {
    return { note: this.note };
  }
  checkState(s: { note: number }): void {
    if (s.note < 0) throw new Error('negative note');
  }
  loadState(s: { note: number }): void {
    this.note = s.note;
    this.order.push('load');
  }
  override activate(act: VirtioActivation): void {
    this.order.push('activate');
    super.activate(act);
  }
}

function setup(noted = false) {
  const t = mmioTestHost();
  const dev = noted ? new NotedEcho('echo0', t.events.loop) : new EchoDevice('echo0', t.events.loop);
  t.host.attachVirtioDevice(dev);
  const transport = t.host.transports[0] as VirtioMmioTransport;
  const drv = t.driverAt(t.bus.registrations('mmio')[0].range.start.value);
  const q = new MockSplitQueue(t.memory, 16);
  return { ...t, dev, transport, drv, q };
}

function addEcho(q: MockSplitQueue, text: string): [number, bigint] {
  const data = new TextEncoder().encode(text);
  const out = q.alloc(64);
  return [
    q.addChain([
      { addr: q.alloc(data.length, data), len: data.length },
      { addr: out, len: 64, write: true },
    ]),
    out,
  ];
}

const drain = (e: FakeEventSystem): number => e.run();

describe('virtio-mmio transport: state', () => {
  it('round-trips; the restored queue resumes at the saved indices (a chain published before the save is served)', () => {
    const a = setup();
    a.drv.init([a.q], VIRTIO_F_VERSION_1 | VIRTIO_F_RING_EVENT_IDX);
    addEcho(a.q, 'one');
    a.drv.notify(0);
    drain(a.events);
    expect(a.q.readUsed()).to.have.length(1);
    const [head2, out2] = addEcho(a.q, 'two'); // published, not yet notified
    a.drv.write32(Reg.QueueSel, 0);

    // A second VMM with the same guest memory contents (copied) restores the state.
    const b = setup();
    const q = new MockSplitQueue(b.memory, 16); // the driver's view (built first: it clears the rings)
    const start = a.memory.regions[0].range.start;
    b.memory.write(start, a.memory.read(start, 1 << 20));
    const { first, second } = roundTripState(a.transport, b.transport);
    expect(second).to.deep.equal(first);
    expect(b.dev.activations).to.equal(1);
    expect(b.drv.status).to.equal(ACK | DRIVER | FEATURES_OK | DRIVER_OK);
    expect(b.drv.read32(Reg.InterruptStatus), 'InterruptStatus survives').to.equal(a.drv.read32(Reg.InterruptStatus));
    expect(b.drv.read32(Reg.ConfigGeneration)).to.equal(a.drv.read32(Reg.ConfigGeneration));

    q.startAt(1); // the driver had consumed one used element ...
    q.setAvailIdx(2); // ... and published 'two' at avail slot 1
    b.drv.notify(0);
    drain(b.events);
    expect(q.readUsed()).to.deep.equal([{ id: head2, len: 3 }]);
    expect(new TextDecoder().decode(b.memory.read(GuestAddress.of(out2), 3))).to.equal('two');
    expect(b.drv.read32(Reg.InterruptStatus) & INT_VRING).to.equal(INT_VRING);
  });

  it('saves a reset transport and an inactive one restores inactive', () => {
    const a = setup();
    const b = setup();
    const { first, second } = roundTripState(a.transport, b.transport);
    expect(second).to.deep.equal(first);
    expect(b.dev.activations).to.equal(0);
    expect(b.drv.status).to.equal(0);
  });

  it("nests the device model's state and loads it before the device is re-activated", () => {
    const a = setup(true);
    (a.dev as NotedEcho).note = 42;
    a.drv.init([a.q], VIRTIO_F_VERSION_1);
    const b = setup(true);
    const { first, second } = roundTripState(a.transport, b.transport);
    expect(second).to.deep.equal(first);
    expect((first.data as unknown as { device: SavedState }).device).to.deep.equal({
      id: 'echo0',
      version: 1,
      data: { note: 42 },
    });
    expect((b.dev as NotedEcho).note).to.equal(42);
    expect((b.dev as NotedEcho).order).to.deep.equal(['load', 'activate']);

    const c = setup(true);
    const hostile = withData(first, (d) => ({ ...d, device: { id: 'echo0', version: 1, data: { note: -1 } } }));
    expect(() => restoreSnapshot(c.transport, hostile)).to.throw(
      StateError,
      /echo0: saved echo note state does not fit/,
    );
    expect((c.dev as NotedEcho).order, 'nothing loaded, nothing activated').to.deep.equal([]);
    const plain = setup();
    expect(() => restoreSnapshot(plain.transport, first)).to.throw(StateError, /device 'echo0' keeps none/);
    expect(() => restoreSnapshot(c.transport, takeSnapshot(plain.transport))).to.throw(StateError, /lacks the state/);
  });

  it('refuses hostile saved state and keeps its own', () => {
    const { transport, drv, q, dev } = setup();
    drv.init([q]);
    const good = takeSnapshot(transport);
    const queue0 = (good.data as { queues: Record<string, unknown>[] }).queues[0]!;
    const withQueue = (edit: Record<string, unknown>) =>
      withData(good, (d) => ({ ...d, queues: [{ ...queue0, ...edit }] }));
    const problems = hostileStateProblems(transport, [
      null,
      42,
      { ...good, version: 2 },
      { ...good, id: 'virtio-mmio:other' },
      withData(good, (d) => ({ ...d, extra: 1 })),
      withData(good, (d) => ({ ...d, status: 0x1ff })),
      withData(good, (d) => ({ ...d, driverFeatures: '99999999999999999999' })),
      withData(good, (d) => ({ ...d, driverFeatures: 12 })),
      withData(good, (d) => ({ ...d, deviceType: 1 })),
      withData(good, (d) => ({ ...d, queues: [] })),
      withData(good, (d) => ({ ...d, driverFeatures: '1' })),
      withData(good, (d) => ({ ...d, status: ACK, activated: true })),
      withData(good, (d) => ({ ...d, interruptStatus: 4 })),
      withData(good, (d) => ({ ...d, device: { id: 'x', version: 1, data: {} } })),
      withQueue({ size: 3 }),
      withQueue({ size: 32 }),
      withQueue({ maxSize: 32 }),
      withQueue({ nextAvail: 70000 }),
      withQueue({ descTable: '-1' }),
      withQueue({ usedRing: '18446744073709551616' }),
      withQueue({ ready: false }),
    ]);
    expect(problems).to.deep.equal([]);
    expect(dev.resets, 'the active device was never reset by a refused restore').to.equal(0);
    expect(drv.status & DRIVER_OK).to.equal(DRIVER_OK);
  });
});
