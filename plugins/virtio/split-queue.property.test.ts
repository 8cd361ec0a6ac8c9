import { expect } from 'chai';
import fc from 'fast-check';
import type { GuestMemory } from '../../core/memory/guest-memory.js';
import { watchedMemory } from '../../core/testing/watched-memory.js';
import {
  VIRTIO_F_RING_EVENT_IDX,
  VIRTIO_F_RING_INDIRECT_DESC,
  VIRTIO_F_VERSION_1,
  type DescriptorChain,
} from '../../core/virtio/virtio.js';
import { VIRTQ_DESC_F_INDIRECT } from './constants.js';
import { VirtQueueError } from './errors.js';
import { SplitQueue } from './split-queue.js';
import { MockSplitQueue, testGuestMemory, type RawDescriptor } from './testing.js';

const MEM_SIZE = 0x10000;
const TABLES = [0x8000n, 0x9000n, 0xfff0n]; // the last one runs off the end for most lengths

const u64Addr = fc.oneof(
  fc.integer({ min: 0, max: MEM_SIZE + 64 }).map(BigInt),
  fc.constantFrom(...TABLES),
  fc.constantFrom((1n << 64n) - 1n, (1n << 64n) - 16n, 1n << 63n, BigInt(Number.MAX_SAFE_INTEGER) + 1n),
  fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
);
const descLen = fc.oneof(
  fc.integer({ min: 0, max: 64 }),
  fc.constantFrom(16, 32, 48, 0x1000, MEM_SIZE, 0xffff_fff0, 0xffff_ffff),
  fc.integer({ min: 0, max: 0xffff_ffff }),
);
const rawDesc = (maxNext: number): fc.Arbitrary<RawDescriptor> =>
  fc.record({
    addr: u64Addr,
    len: descLen,
    flags: fc.oneof(fc.integer({ min: 0, max: 7 }), fc.integer({ min: 0, max: 0xffff })),
    next: fc.oneof(fc.integer({ min: 0, max: maxNext }), fc.integer({ min: 0, max: 0xffff })),
  });

const hostileQueue = fc.constantFrom(1, 2, 4, 8, 16).chain((size) =>
  fc.record({
    size: fc.constant(size),
    indirect: fc.boolean(),
    eventIdx: fc.boolean(),
    table: fc.array(rawDesc(size + 1), { minLength: size, maxLength: size }),
    indirectTables: fc.array(fc.array(rawDesc(6), { minLength: 1, maxLength: 6 }), {
      minLength: TABLES.length,
      maxLength: TABLES.length,
    }),
    heads: fc.array(fc.oneof(fc.integer({ min: 0, max: size - 1 }), fc.integer({ min: 0, max: 0xffff })), {
      minLength: size,
      maxLength: size,
    }),
    availIdx: fc.oneof(fc.integer({ min: 0, max: size + 1 }), fc.integer({ min: 0, max: 0xffff })),
    usedEvent: fc.integer({ min: 0, max: 0xffff }),
  }),
);

function checkChain(mem: GuestMemory, c: DescriptorChain, size: number): void {
  expect(c.head).to.be.within(0, size - 1);
  for (const b of [...c.readable, ...c.writable])
    expect(mem.isValidRange(b.addr, b.len), `${b.addr}+${b.len}`).to.equal(true);
  expect(c.readable.reduce((s, b) => s + b.len, 0)).to.equal(c.readableLength);
  expect(c.writable.reduce((s, b) => s + b.len, 0)).to.equal(c.writableLength);
  expect(c.readableLength + c.writableLength).to.be.at.most(0xffff_ffff);
  // A chain visits at most `size` descriptors plus one indirect table (at most 6 entries here).
  expect(c.readable.length + c.writable.length).to.be.at.most(size + 6);
}

describe('SplitQueue under hostile drivers (property-based)', () => {
  it('10,000 random and hostile rings: only VirtQueueError escapes, nothing outside guest memory, every pop ends', function () {
    // ~4 s of CPU; on a machine shared with sandbox runs mocha's default 20 s was seen to run out.
    this.timeout(120_000);
    let chains = 0,
      errors = 0;
    fc.assert(
      fc.property(hostileQueue, (h) => {
        const { mem, watch } = watchedMemory(testGuestMemory(MEM_SIZE));
        const drv = new MockSplitQueue(mem, h.size);
        h.table.forEach((d, i) => drv.writeDescriptor(drv.descTable, i, d));
        h.indirectTables.forEach((t, ti) =>
          t.forEach((d, i) => {
            const at = TABLES[ti] + BigInt(16 * i);
            if (at + 16n <= BigInt(MEM_SIZE)) drv.writeDescriptor(TABLES[ti], i, d);
          }),
        );
        for (const head of h.heads) drv.publish(head);
        drv.setAvailIdx(h.availIdx);
        drv.setUsedEvent(h.usedEvent);
        const q = new SplitQueue(0, h.size);
        drv.configure(q);
        q.activate(
          mem,
          VIRTIO_F_VERSION_1 |
            (h.indirect ? VIRTIO_F_RING_INDIRECT_DESC : 0n) |
            (h.eventIdx ? VIRTIO_F_RING_EVENT_IDX : 0n),
        );
        // Every pop consumes one avail entry, so at most `size` pops can succeed before the ring is empty.
        for (let i = 0; i <= h.size + 1; i++) {
          let c: DescriptorChain | undefined;
          try {
            c = q.pop();
          } catch (err) {
            expect(err).to.be.instanceOf(VirtQueueError);
            expect((err as VirtQueueError).kind).to.not.equal('GuestMemory');
            errors++;
            continue;
          }
          if (!c) break;
          chains++;
          checkChain(mem, c, h.size);
          q.addUsed(c.head, Math.min(c.writableLength, 7));
          q.needsNotification();
          q.enableNotification();
          q.disableNotification();
        }
        expect(watch.outside, 'accesses outside guest memory').to.deep.equal([]);
      }),
      { numRuns: 10_000 },
    );
    // The generator must reach both outcomes, or the property proves little.
    expect(chains).to.be.greaterThan(100);
    expect(errors).to.be.greaterThan(100);
  });

  it('well-formed chains from the mock driver come back exactly (direct and indirect)', () => {
    const buffer = fc.record({ len: fc.integer({ min: 0, max: 300 }), write: fc.boolean() });
    fc.assert(
      fc.property(
        fc.array(fc.array(buffer, { minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 8 }),
        fc.array(fc.boolean(), { minLength: 8, maxLength: 8 }),
        (chainsIn, indirect) => {
          const mem = testGuestMemory(1 << 20);
          const drv = new MockSplitQueue(mem, 64);
          const q = new SplitQueue(0, 64);
          drv.configure(q);
          q.activate(mem, VIRTIO_F_VERSION_1 | VIRTIO_F_RING_INDIRECT_DESC);
          const expected = chainsIn.map((bufs, i) => {
            const sorted = [...bufs]
              .sort((x, y) => Number(x.write) - Number(y.write))
              .map((b) => ({ ...b, addr: drv.alloc(b.len) }));
            const head = indirect[i] ? drv.addIndirectChain(sorted) : drv.addChain(sorted);
            return {
              head,
              readable: sorted.filter((b) => !b.write && b.len > 0).map((b) => [b.addr, b.len]),
              writable: sorted.filter((b) => b.write && b.len > 0).map((b) => [b.addr, b.len]),
            };
          });
          for (const e of expected) {
            const c = q.pop()!;
            expect(c.head).to.equal(e.head);
            expect(c.readable.map((b) => [b.addr.value, b.len])).to.deep.equal(e.readable);
            expect(c.writable.map((b) => [b.addr.value, b.len])).to.deep.equal(e.writable);
            q.addUsed(c.head, c.writableLength);
          }
          expect(q.pop()).to.equal(undefined);
          expect(drv.readUsed().map((u) => u.id)).to.deep.equal(expected.map((e) => e.head));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('an indirect descriptor pointing at itself is refused, not followed', () => {
    const mem = testGuestMemory(MEM_SIZE);
    const drv = new MockSplitQueue(mem, 4);
    drv.writeDescriptor(TABLES[0], 0, { addr: TABLES[0], len: 16, flags: VIRTQ_DESC_F_INDIRECT, next: 0 });
    drv.writeDescriptor(drv.descTable, 0, { addr: TABLES[0], len: 16, flags: VIRTQ_DESC_F_INDIRECT, next: 0 });
    drv.publish(0);
    const q = new SplitQueue(0, 4);
    drv.configure(q);
    q.activate(mem, VIRTIO_F_VERSION_1 | VIRTIO_F_RING_INDIRECT_DESC);
    expect(() => q.pop()).to.throw(VirtQueueError, /inside an indirect table/);
  });
});
