import { expect } from 'chai';
import { createHeapMemory } from '../../core/memory/backends/heap.js';
import { VIRTIO_F_RING_EVENT_IDX, VIRTIO_F_RING_INDIRECT_DESC, VIRTIO_F_VERSION_1 } from '../../core/virtio/virtio.js';
import {
  VIRTQ_DESC_F_INDIRECT,
  VIRTQ_DESC_F_NEXT,
  VRING_AVAIL_F_NO_INTERRUPT,
  VRING_USED_F_NO_NOTIFY,
} from './constants.js';
import { VirtQueueError, type VirtQueueErrorKind } from './errors.js';
import { SplitQueue } from './split-queue.js';
import { HIGH_PAGE, MockSplitQueue, memoryWithHighPage, testGuestMemory } from './testing.js';

const ALL = VIRTIO_F_VERSION_1 | VIRTIO_F_RING_INDIRECT_DESC;

function setup(size = 8, features = ALL) {
  const mem = testGuestMemory(1 << 20);
  const drv = new MockSplitQueue(mem, size);
  const q = new SplitQueue(0, size);
  drv.configure(q);
  q.activate(mem, features);
  return { mem, drv, q };
}

function expectKind(fn: () => unknown, kind: VirtQueueErrorKind): void {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(VirtQueueError);
    expect((err as VirtQueueError).kind).to.equal(kind);
    return;
  }
  expect.fail(`expected VirtQueueError ${kind}`);
}

describe('SplitQueue (device side)', () => {
  it('pops a direct chain split into readable then writable buffers', () => {
    const { drv, q } = setup();
    const r1 = drv.alloc(10),
      r2 = drv.alloc(6),
      w1 = drv.alloc(32);
    const head = drv.addChain([
      { addr: r1, len: 10 },
      { addr: r2, len: 6 },
      { addr: w1, len: 32, write: true },
    ]);
    const c = q.pop()!;
    expect(c.head).to.equal(head);
    expect(c.readable.map((b) => [b.addr.value, b.len])).to.deep.equal([
      [r1, 10],
      [r2, 6],
    ]);
    expect(c.writable.map((b) => [b.addr.value, b.len])).to.deep.equal([[w1, 32]]);
    expect(c.readableLength).to.equal(16);
    expect(c.writableLength).to.equal(32);
    expect(q.pop()).to.equal(undefined);
  });

  it('pops an indirect chain and returns used entries to the driver', () => {
    const { drv, q } = setup();
    const r = drv.alloc(4),
      w = drv.alloc(8);
    const head = drv.addIndirectChain([
      { addr: r, len: 4 },
      { addr: w, len: 8, write: true },
    ]);
    const c = q.pop()!;
    expect(c.readableLength).to.equal(4);
    expect(c.writableLength).to.equal(8);
    q.addUsed(c.head, 8);
    expect(drv.readUsed()).to.deep.equal([{ id: head, len: 8 }]);
    expect(drv.usedIdx).to.equal(1);
  });

  it('wraps the avail and used indexes past 65535', () => {
    const mem = testGuestMemory(1 << 20);
    const drv = new MockSplitQueue(mem, 4);
    const q = new SplitQueue(0, 4);
    drv.configure(q);
    drv.startAt(65530);
    q.activate(mem, ALL, { nextAvail: 65530, nextUsed: 65530, signalledUsed: 65530 });
    for (let i = 0; i < 20; i++) {
      const b = 0x20000n;
      drv.addChain([{ addr: b, len: 1, write: true }]);
      const c = q.pop()!;
      q.addUsed(c.head, 1);
      expect(drv.readUsed()).to.have.length(1);
    }
    expect(drv.usedIdx).to.equal((65530 + 20) & 0xffff);
  });

  it('refuses indirect descriptors without the negotiated feature', () => {
    const { drv, q } = setup(8, VIRTIO_F_VERSION_1);
    drv.addIndirectChain([{ addr: drv.alloc(4), len: 4 }]);
    expectKind(() => q.pop(), 'IndirectNotNegotiated');
  });

  it('ends a descriptor loop with ChainTooLong', () => {
    const { drv, q } = setup(4);
    drv.writeDescriptor(drv.descTable, 0, { addr: 0x20000n, len: 1, flags: VIRTQ_DESC_F_NEXT, next: 1 });
    drv.writeDescriptor(drv.descTable, 1, { addr: 0x20000n, len: 1, flags: VIRTQ_DESC_F_NEXT, next: 0 });
    drv.publish(0);
    expectKind(() => q.pop(), 'ChainTooLong');
  });

  it('rejects a next index beyond the table and a head beyond the queue', () => {
    const { drv, q } = setup(4);
    drv.writeDescriptor(drv.descTable, 0, { addr: 0x20000n, len: 1, flags: VIRTQ_DESC_F_NEXT, next: 4 });
    drv.publish(0);
    expectKind(() => q.pop(), 'InvalidDescriptorIndex');
    drv.publish(9);
    expectKind(() => q.pop(), 'InvalidDescriptorIndex');
  });

  it('rejects nested indirect tables, INDIRECT with NEXT, and bad table lengths', () => {
    const cases: [number, number, VirtQueueErrorKind][] = [
      [32, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 'InvalidIndirectDescriptorTable'],
      [0, VIRTQ_DESC_F_INDIRECT, 'InvalidIndirectDescriptorTable'],
      [24, VIRTQ_DESC_F_INDIRECT, 'InvalidIndirectDescriptorTable'],
    ];
    for (const [len, flags, kind] of cases) {
      const { drv, q } = setup();
      drv.writeDescriptor(drv.descTable, 0, { addr: drv.alloc(64), len, flags, next: 1 });
      drv.publish(0);
      expectKind(() => q.pop(), kind);
    }
    const { drv, q } = setup();
    const table = drv.alloc(32);
    drv.writeDescriptor(table, 0, { addr: table, len: 32, flags: VIRTQ_DESC_F_INDIRECT, next: 0 });
    drv.writeDescriptor(drv.descTable, 0, { addr: table, len: 32, flags: VIRTQ_DESC_F_INDIRECT, next: 0 });
    drv.publish(0);
    expectKind(() => q.pop(), 'NestedIndirectDescriptor');
  });

  it('ends a loop inside an indirect table', () => {
    const { drv, q } = setup();
    const table = drv.alloc(32);
    drv.writeDescriptor(table, 0, { addr: 0x20000n, len: 1, flags: VIRTQ_DESC_F_NEXT, next: 1 });
    drv.writeDescriptor(table, 1, { addr: 0x20000n, len: 1, flags: VIRTQ_DESC_F_NEXT, next: 0 });
    drv.writeDescriptor(drv.descTable, 0, { addr: table, len: 32, flags: VIRTQ_DESC_F_INDIRECT, next: 0 });
    drv.publish(0);
    expectKind(() => q.pop(), 'ChainTooLong');
  });

  it('rejects buffers outside guest memory or overflowing 2^64', () => {
    for (const addr of [1n << 20n, (1n << 64n) - 4n, (1n << 20n) - 2n]) {
      const { drv, q } = setup();
      drv.writeDescriptor(drv.descTable, 0, { addr, len: 8, flags: 0, next: 0 });
      drv.publish(0);
      expectKind(() => q.pop(), 'InvalidBufferAddress');
    }
    const { drv, q } = setup();
    drv.writeDescriptor(drv.descTable, 0, {
      addr: 0xffff_ffff_ffff_0000n,
      len: 64,
      flags: VIRTQ_DESC_F_INDIRECT,
      next: 0,
    });
    drv.publish(0);
    expectKind(() => q.pop(), 'InvalidBufferAddress');
  });

  it('keeps addresses below 2^53 as numbers (chain.flat), takes bigints above, and gives the same buffers', () => {
    // Low RAM in two adjacent regions, and one page at 2^60 (only the bigint path can reach it).
    const HIGH = HIGH_PAGE;
    const mem = memoryWithHighPage(0x80000n, 0x100000n);
    const drv = new MockSplitQueue(mem, 8);
    const q = new SplitQueue(0, 8);
    drv.configure(q);
    q.activate(mem, ALL);
    const a = drv.alloc(100);
    // A buffer across the region boundary at 0x80000 (checked the slow way), a zero-length one (dropped).
    drv.addIndirectChain([
      { addr: a, len: 100 },
      { addr: 0x7fff0n, len: 0x20 },
      { addr: a, len: 0 },
      { addr: 0x90000n, len: 4096, write: true },
    ]);
    const c = q.pop()!;
    expect(c.flat).to.deep.equal({
      count: 3,
      readableCount: 2,
      addrs: [Number(a), 0x7fff0, 0x90000],
      lens: [100, 0x20, 4096],
    });
    expect(c.readable.map((b) => [b.addr.value, b.len])).to.deep.equal([
      [a, 100],
      [0x7fff0n, 0x20],
    ]);
    expect(c.writable.map((b) => [b.addr.value, b.len])).to.deep.equal([[0x90000n, 4096]]);
    expect(Object.isFrozen(c.readable) && Object.isFrozen(c.writable[0])).to.equal(true);
    drv.addChain([
      { addr: a, len: 16 },
      { addr: HIGH + 0x10n, len: 0xff0, write: true },
    ]);
    const h = q.pop()!;
    expect(h.flat, 'no flat view with an address above 2^53').to.equal(undefined);
    expect(h.readable.map((b) => [b.addr.value, b.len])).to.deep.equal([[a, 16]]);
    expect(h.writable.map((b) => [b.addr.value, b.len])).to.deep.equal([[HIGH + 0x10n, 0xff0]]);
    // Past the high page, and just below 2^53 (a number address outside memory): refused either way.
    for (const addr of [HIGH + 0x1000n - 8n, (1n << 53n) - 8n, (1n << 53n) + 8n]) {
      drv.addChain([{ addr, len: 16 }]);
      expectKind(() => q.pop(), 'InvalidBufferAddress');
    }
  });

  it('rejects a readable buffer after a writable one', () => {
    const { drv, q } = setup();
    drv.addChain([
      { addr: drv.alloc(4), len: 4, write: true },
      { addr: drv.alloc(4), len: 4 },
    ]);
    expectKind(() => q.pop(), 'ReadableAfterWritable');
  });

  it('rejects avail.idx running more than a queue ahead', () => {
    const { drv, q } = setup(8);
    drv.setAvailIdx(9);
    expectKind(() => q.pop(), 'InvalidAvailRingIndex');
  });

  it('rejects chains over 2^32 - 1 bytes', () => {
    const mem = testGuestMemory(1n << (32n + 0n));
    const drv = new MockSplitQueue(mem, 4);
    const q = new SplitQueue(0, 4);
    drv.configure(q);
    q.activate(mem, ALL);
    drv.addChain([
      { addr: 0x10000n, len: 0xffff_0000 },
      { addr: 0x10000n, len: 0x10000 },
    ]);
    expectKind(() => q.pop(), 'ChainLengthOverflow');
  });

  it('validates size, alignment and placement at activation', () => {
    const mem = testGuestMemory(1 << 16);
    const q = new SplitQueue(0, 8);
    const drv = new MockSplitQueue(mem, 8);
    const bad: [Partial<SplitQueue>, VirtQueueErrorKind][] = [
      [{ size: 6 }, 'InvalidSize'],
      [{ size: 16 }, 'InvalidSize'],
      [{ size: 0 }, 'InvalidSize'],
      [{ descTable: drv.descTable + 8n }, 'InvalidAlignment'],
      [{ availRing: drv.availRing + 1n }, 'InvalidAlignment'],
      [{ usedRing: drv.usedRing + 2n }, 'InvalidAlignment'],
      [{ usedRing: (1n << 16n) - 16n }, 'RingOutsideMemory'],
      [{ descTable: (1n << 64n) - 16n }, 'RingOutsideMemory'],
    ];
    for (const [patch, kind] of bad) {
      q.reset();
      drv.configure(q);
      Object.assign(q, patch);
      expectKind(() => q.activate(mem, ALL), kind);
      expect(q.active).to.equal(false);
    }
    expect(() => new SplitQueue(0, 100)).to.throw(VirtQueueError);
  });

  it('a queue the driver left not ready pops nothing', () => {
    const mem = testGuestMemory(1 << 16);
    const q = new SplitQueue(1, 8);
    q.activate(mem, ALL);
    expect(q.pop()).to.equal(undefined);
    expect(q.needsNotification()).to.equal(false);
    expectKind(() => q.addUsed(0, 0), 'NotReady');
  });

  it('rejects used entries with a bad head or length', () => {
    const { q } = setup(8);
    expectKind(() => q.addUsed(8, 0), 'InvalidDescriptorIndex');
    expectKind(() => q.addUsed(0, 2 ** 32), 'InvalidUsedLength');
    expectKind(() => q.addUsed(0, -1), 'InvalidUsedLength');
  });

  it('refuses a chain beyond queue-size chains in use (a driver re-posting a head the device holds)', () => {
    const { drv, q } = setup(4);
    const head = drv.addChain([{ addr: drv.alloc(1), len: 1, write: true }]);
    q.pop();
    for (let i = 0; i < 3; i++) {
      drv.publish(head);
      expect(q.pop()?.head).to.equal(head);
    }
    drv.publish(head);
    expectKind(() => q.pop(), 'QueueSizeExceeded');
    q.addUsed(head, 0); // one returned: room for one more
    expect(q.pop()?.head).to.equal(head);
  });

  describe('notification suppression without EVENT_IDX', () => {
    it('sets and clears VRING_USED_F_NO_NOTIFY and reports buffers that arrived meanwhile', () => {
      const { drv, q } = setup();
      q.disableNotification();
      expect(drv.usedFlags).to.equal(VRING_USED_F_NO_NOTIFY);
      expect(q.enableNotification()).to.equal(false);
      expect(drv.usedFlags).to.equal(0);
      q.disableNotification();
      drv.addChain([{ addr: drv.alloc(1), len: 1 }]);
      expect(q.enableNotification()).to.equal(true);
    });

    it('honours VRING_AVAIL_F_NO_INTERRUPT and only signals for new used entries', () => {
      const { drv, q } = setup();
      expect(q.needsNotification()).to.equal(false);
      drv.addChain([{ addr: drv.alloc(1), len: 1 }]);
      q.addUsed(q.pop()!.head, 0);
      expect(q.needsNotification()).to.equal(true);
      expect(q.needsNotification()).to.equal(false);
      drv.setAvailFlags(VRING_AVAIL_F_NO_INTERRUPT);
      drv.addChain([{ addr: drv.alloc(1), len: 1 }]);
      q.addUsed(q.pop()!.head, 0);
      expect(q.needsNotification()).to.equal(false);
    });
  });

  describe('VIRTIO_F_RING_EVENT_IDX', () => {
    it('interrupts only when used.idx passes used_event', () => {
      const { drv, q } = setup(8, ALL | VIRTIO_F_RING_EVENT_IDX);
      drv.setUsedEvent(2); // interrupt me once the third buffer is used
      const results: boolean[] = [];
      for (let i = 0; i < 4; i++) {
        drv.addChain([{ addr: drv.alloc(1), len: 1 }]);
        q.addUsed(q.pop()!.head, 0);
        results.push(q.needsNotification());
      }
      expect(results).to.deep.equal([false, false, true, false]);
    });

    it('signals once for a batch that crosses used_event', () => {
      const { drv, q } = setup(8, ALL | VIRTIO_F_RING_EVENT_IDX);
      drv.setUsedEvent(1);
      for (let i = 0; i < 3; i++) drv.addChain([{ addr: drv.alloc(1), len: 1 }]);
      for (let c = q.pop(); c; c = q.pop()) q.addUsed(c.head, 0);
      expect(q.needsNotification()).to.equal(true);
      expect(q.needsNotification()).to.equal(false);
    });

    it('publishes avail_event on enable and ignores avail flags', () => {
      const { drv, q } = setup(8, ALL | VIRTIO_F_RING_EVENT_IDX);
      drv.addChain([{ addr: drv.alloc(1), len: 1 }]);
      drv.addChain([{ addr: drv.alloc(1), len: 1 }]);
      q.disableNotification();
      expect(drv.usedFlags).to.equal(0);
      q.pop();
      q.pop();
      expect(q.enableNotification()).to.equal(false);
      expect(drv.availEvent).to.equal(2);
      drv.addChain([{ addr: drv.alloc(1), len: 1 }]);
      expect(q.enableNotification()).to.equal(true);
    });
  });

  it('works with rings that span two memory regions, and turns memory failures into VirtQueueError', () => {
    // The available ring [0x1080, 0x1094) crosses the region boundary at 0x1088.
    const mem = createHeapMemory({
      regions: [
        { start: 0n, size: 0x1088n },
        { start: 0x1088n, size: 0xf0000n },
      ],
      backend: 'heap',
    });
    const drv = new MockSplitQueue(mem, 8);
    const q = new SplitQueue(0, 8);
    drv.configure(q);
    q.activate(mem, ALL);
    for (let i = 0; i < 6; i++) drv.addChain([{ addr: drv.alloc(1), len: 1 }]);
    for (let c = q.pop(); c; c = q.pop()) q.addUsed(c.head, 1);
    expect(drv.readUsed()).to.have.length(6);
    drv.addChain([{ addr: drv.alloc(1), len: 1 }]);
    mem.close();
    expectKind(() => q.pop(), 'GuestMemory');
  });
});
