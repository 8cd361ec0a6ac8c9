import { expect } from 'chai';
import { readSnapshot, takeSnapshot } from '../../core/state/persist.js';
import { roundTripState } from '../../core/testing/state.js';
import { VIRTIO_F_VERSION_1 } from '../../core/virtio/virtio.js';
import { EchoDevice, MockSplitQueue } from '../virtio/testing.js';
import type { VirtioPciFunction } from './function.js';
import { Common, VIRTIO_MSI_NO_VECTOR } from './layout.js';
import { pciTestHost } from './testing.js';

/** A function with an echo device, MSI-X on, queue 0 on vector 1, driven to DRIVER_OK. */
function running() {
  const t = pciTestHost({ ioeventfd: false });
  const dev = new EchoDevice('echo0', t.events.loop, { deviceType: 63 });
  t.host.attachVirtioDevice(dev);
  const fn = t.host.functions[0] as VirtioPciFunction;
  const drv = t.driver();
  const q = new MockSplitQueue(t.memory, 16);
  drv.enableMsix(2);
  drv.negotiate(VIRTIO_F_VERSION_1);
  drv.setCommon(Common.msixConfig, 2, 0);
  drv.setupQueue(0, q, 1);
  drv.driverOk();
  return { ...t, dev, fn, drv, q };
}

function echo(q: MockSplitQueue, text: string): number {
  const data = new TextEncoder().encode(text);
  return q.addChain([
    { addr: q.alloc(data.length, data), len: data.length },
    { addr: q.alloc(32), len: 32, write: true },
  ]);
}

describe('virtio-pci function state', () => {
  it('round-trips into a fresh function over the same memory: it serves on, MSI-X vectors and all', () => {
    const a = running();
    echo(a.q, 'one');
    a.drv.notify(0);
    a.events.run();
    expect(a.q.readUsed()).to.have.length(1);
    const head2 = echo(a.q, 'two'); // published, not yet notified

    // A second VMM with the same guest memory contents (copied) restores the state.
    const b = pciTestHost({ ioeventfd: false });
    const dev = new EchoDevice('echo0', b.events.loop, { deviceType: 63 });
    b.host.attachVirtioDevice(dev);
    const fn = b.host.functions[0] as VirtioPciFunction;
    const q = new MockSplitQueue(b.memory, 16); // the driver's view (built first: it clears the rings)
    const start = a.memory.regions[0].range.start;
    b.memory.write(start, a.memory.read(start, 1 << 20));
    const { first, second } = roundTripState(a.fn, fn);
    expect(second).to.deep.equal(first);
    expect(dev.activations).to.equal(1);
    expect(fn.transport.queueVectors).to.deep.equal([1]);
    expect(fn.transport.msixConfig).to.equal(0);
    expect(fn.msix.enabled).to.equal(true);
    q.startAt(1);
    q.setAvailIdx(2);
    b.driver().notify(0);
    b.events.run();
    expect(q.readUsed()).to.deep.equal([{ id: head2, len: 3 }]);
    expect(b.vm.msis.at(-1)).to.deep.equal({ address: 0xfee0_0000n, data: 0x41 });
  });

  it('keeps an MSI-X pending bit: a vector raised while masked is delivered when the restored guest unmasks it', () => {
    const a = running();
    const maskAt = (fn: VirtioPciFunction, i: number, masked: boolean): void =>
      fn.msix.writeTable(BigInt(16 * i + 12), Uint8Array.of(masked ? 1 : 0, 0, 0, 0));
    maskAt(a.fn, 1, true);
    expect(a.fn.msix.trigger(1)).to.equal(true);
    const pba = (fn: VirtioPciFunction): number => {
      const b = new Uint8Array(8);
      fn.msix.readPba(0n, b);
      return b[0]!;
    };
    expect(pba(a.fn), 'pending at the save').to.equal(0b10);
    const b = pciTestHost({ ioeventfd: false });
    b.host.attachVirtioDevice(new EchoDevice('echo0', b.events.loop, { deviceType: 63 }));
    const fn = b.host.functions[0] as VirtioPciFunction;
    const start = a.memory.regions[0].range.start;
    b.memory.write(start, a.memory.read(start, 1 << 20));
    roundTripState(a.fn, fn);
    expect(pba(fn), 'pending after the restore').to.equal(0b10);
    const before = b.vm.msis.length;
    maskAt(fn, 1, false);
    expect(b.vm.msis.slice(before)).to.deep.equal([{ address: 0xfee0_0000n, data: 0x41 }]);
    expect(pba(fn)).to.equal(0);
  });

  it('refuses a state for another device, with vectors outside the table, or an unknown field', () => {
    const a = running();
    const saved = JSON.parse(JSON.stringify(takeSnapshot(a.fn))) as { id: string; version: number; data: object };
    const other = pciTestHost();
    other.host.attachVirtioDevice(new EchoDevice('echo0', other.events.loop, { deviceType: 62 }));
    const fn = other.host.functions[0] as VirtioPciFunction;
    expect(() => readSnapshot(fn, saved)).to.throw(/device type 63, not 62/);
    const same = pciTestHost();
    same.host.attachVirtioDevice(new EchoDevice('echo0', same.events.loop, { deviceType: 63 }));
    const f2 = same.host.functions[0] as VirtioPciFunction;
    expect(() => readSnapshot(f2, { ...saved, data: { ...saved.data, queueVectors: [9] } })).to.throw(
      /vector lies outside the MSI-X table/,
    );
    expect(() => readSnapshot(f2, { ...saved, data: { ...saved.data, msixPending: [7] } })).to.throw(
      /pending vector lies outside the MSI-X table/,
    );
    expect(() => readSnapshot(f2, { ...saved, data: { ...saved.data, extra: 1 } })).to.throw();
    expect(f2.transport.queueVectors).to.deep.equal([VIRTIO_MSI_NO_VECTOR]); // nothing changed
  });
});
