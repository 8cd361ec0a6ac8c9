import { expect } from 'chai';
import { GuestAddress } from '../../core/address.js';
import type { MemorySlot, Vm } from '../../core/hypervisor/hypervisor.js';
import { testGuestMemory } from '../../core/testing/index.js';
import { RegionCache } from '../virtio-net/iovec.js';
import { DirtyTracker } from './dirty.js';

/** A Vm double with a dirty log: `dirty` lists the pages KVM would report for slot 0. */
function fakeVm(): { vm: Vm; slots: MemorySlot[]; dirty: number[] } {
  const slots: MemorySlot[] = [];
  const dirty: number[] = [];
  const vm = {
    capabilities: { dirtyLog: true },
    setMemorySlot: (s: MemorySlot) => slots.push(s),
    getDirtyLog: () => {
      const bits = new BigUint64Array(4);
      for (const p of dirty.splice(0)) bits[p >> 6] = bits[p >> 6]! | (1n << BigInt(p & 63));
      return bits;
    },
  } as unknown as Vm;
  return { vm, slots, dirty };
}

const pagesOf = (bitmap: Uint8Array): number[] => [...bitmap.keys()].filter((i) => bitmap[i]);

describe('migration: the dirty tracker (KVM log + VMM-side bitmap)', () => {
  it('turns dirty logging on and off, and merges KVM pages with the VMM writes it saw', () => {
    const memory = testGuestMemory(64 * 4096);
    const { vm, slots, dirty } = fakeVm();
    const t = new DirtyTracker(memory, vm);
    const rx = new RegionCache(); // virtio-net rx writes frames through its own views of the regions
    expect(rx.usable(memory)).to.equal(true);
    t.start();
    expect(rx.usable(memory), 'while tracking, rx writes go through the (tracked) methods').to.equal(false);
    expect(slots.map((s) => s.logDirtyPages)).to.deep.equal([true]);
    expect(pagesOf(t.harvest())).to.deep.equal([]);
    dirty.push(3);
    memory.writeU32(GuestAddress.of(5 * 4096 + 4094), 1); // spans pages 5 and 6
    memory.fill(GuestAddress.of(10 * 4096), 10, 1);
    memory.slice(GuestAddress.of(20 * 4096), 16, 'read'); // a read view: not a write
    memory.slices(GuestAddress.of(30 * 4096), 8192, 'write');
    memory.sliceAt!(33 * 4096 + 4000, 200, 'write'); // a device's number-address view (virtio-blk reads)
    memory.sliceAt!(36 * 4096, 16, 'read');
    expect(pagesOf(t.harvest())).to.deep.equal([3, 5, 6, 10, 30, 31, 33, 34]);
    expect(pagesOf(t.harvest()), 'a harvest clears both logs').to.deep.equal([]);
    t.stop();
    expect(rx.usable(memory)).to.equal(true);
    expect(slots.map((s) => s.logDirtyPages)).to.deep.equal([true, undefined]);
    memory.writeU8(GuestAddress.of(40 * 4096), 1);
    expect(Object.prototype.hasOwnProperty.call(memory, 'writeU8'), 'the memory has its own methods back').to.equal(
      false,
    );
  });

  it('without a dirty log every page counts as dirty; used rings of active queues come from saved states', () => {
    const memory = testGuestMemory(64 * 4096);
    const t = new DirtyTracker(memory, undefined);
    t.start();
    expect(t.hasDirtyLog).to.equal(false);
    expect(pagesOf(t.harvest()).length).to.equal(64);
    t.stop();
    const withLog = new DirtyTracker(memory, fakeVm().vm);
    withLog.start();
    withLog.markQueueRings([
      {
        id: 'virtio-mmio:blk',
        version: 1,
        data: { queues: [{ active: true, usedRing: String(12 * 4096), size: 256 }] },
      },
      {
        id: 'virtio-mmio:net',
        version: 1,
        data: { queues: [{ active: false, usedRing: String(40 * 4096), size: 8 }] },
      },
    ]);
    // 6 + 8 * 256 + 2 bytes from page 12: page 12 only; the inactive queue counts not
    expect(pagesOf(withLog.harvest())).to.deep.equal([12]);
    withLog.stop();
  });
});
