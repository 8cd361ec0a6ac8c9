import { expect } from 'chai';
import fc from 'fast-check';
import { GuestAddress } from '../../core/address.js';
import { testGuestMemory } from '../../core/testing/test-memory.js';
import { watchedMemory } from '../../core/testing/watched-memory.js';
import {
  VIRTIO_F_RING_EVENT_IDX,
  VIRTIO_F_RING_INDIRECT_DESC,
  VIRTIO_F_VERSION_1,
  type DescriptorChain,
} from '../../core/virtio/virtio.js';
import { VirtQueueError } from '../../plugins/virtio/errors.js';
import { SplitQueue } from '../../plugins/virtio/split-queue.js';
import { Outcomes, expectOnly, fuzzParams, fuzzTimeout, fuzzTitle, reportOutcomes } from './support.js';

/**
 * Byte-level fuzzing of the split virtqueue: the driver's ring addresses and size are anything, the
 * rings and a data area hold random bytes (descriptors, avail entries, indirect tables alike; fields steered
 * into range with a random bias), and the driver changes avail.idx and ring bytes between the device's
 * operations. (The structured
 * property test beside split-queue.ts builds descriptors field by field; this one does not.)
 */
const MEM = 0x1000;
const MAX_SIZE = 16;

/** The well-formed layout for a queue of MAX_SIZE: descriptor table, avail ring, used ring. */
const GOOD = { desc: 0x0n, avail: 0x100n, used: 0x140n };
const DATA = 0x200;

const ringAddr = (good: bigint) =>
  fc.oneof(
    { weight: 30, arbitrary: fc.constant(good) },
    { weight: 1, arbitrary: fc.constantFrom(0x1n, 0x102n, BigInt(MEM - 16), BigInt(MEM), (1n << 64n) - 16n) },
    { weight: 1, arbitrary: fc.bigInt({ min: 0n, max: BigInt(MEM) }) },
    { weight: 1, arbitrary: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }) },
  );
const op = fc.oneof(
  { weight: 4, arbitrary: fc.record({ t: fc.constant('pop' as const) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant('used' as const),
      len: fc.oneof(fc.nat(64), fc.constant(0xffff_ffff), fc.integer({ min: -1, max: 2 ** 33 })),
    }),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('notify' as const) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      t: fc.constant('poke' as const),
      at: fc.nat(DATA - 1),
      bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      t: fc.constant('availIdx' as const),
      v: fc.oneof(fc.nat(2 * MAX_SIZE), fc.integer({ min: 0, max: 0xffff })),
    }),
  },
);
const hostileRing = fc.record({
  size: fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(1, 2, 4, 8, 16) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffff }) },
  ),
  desc: ringAddr(GOOD.desc),
  avail: ringAddr(GOOD.avail),
  used: ringAddr(GOOD.used),
  features: fc.constantFrom(
    0n,
    VIRTIO_F_RING_INDIRECT_DESC,
    VIRTIO_F_RING_EVENT_IDX,
    VIRTIO_F_RING_INDIRECT_DESC | VIRTIO_F_RING_EVENT_IDX,
  ),
  /** Seeds the bytes of the whole memory; `bias` decides how often a field is steered into range. */
  fill: fc.integer(),
  bias: fc.oneof(fc.constantFrom(0.9, 0.97, 1), fc.double({ min: 0, max: 1, noNaN: true })),
  availIdx: fc.oneof(
    { weight: 4, arbitrary: fc.nat(MAX_SIZE) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffff }) },
  ),
  ops: fc.array(op, { maxLength: 40 }),
});

/** Random memory contents, with descriptor fields pulled into range with probability `bias`. */
function fillMemory(bytes: Uint8Array, seed: number, bias: number): void {
  let x = seed | 1;
  const next = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
  for (let i = 0; i < bytes.length; i += 4) new DataView(bytes.buffer).setUint32(i, next(), true);
  const dv = new DataView(bytes.buffer);
  const steer = () => next() / 2 ** 32 < bias;
  // every 16 bytes may be a descriptor (the table, and indirect tables anywhere)
  for (let d = 0; d + 16 <= bytes.length; d += 16) {
    if (steer()) dv.setBigUint64(d, BigInt(next() % bytes.length), true);
    if (steer()) dv.setUint32(d + 8, next() % 600, true);
    if (steer()) dv.setUint16(d + 12, (next() % 4) | (next() % 8 === 0 ? 4 : 0), true);
    if (steer()) dv.setUint16(d + 14, next() % (MAX_SIZE + 2), true);
  }
  // avail ring entries: heads mostly in range
  for (let i = 0; i < MAX_SIZE; i++)
    if (steer()) dv.setUint16(Number(GOOD.avail) + 4 + 2 * i, next() % (MAX_SIZE + 1), true);
}

describe('fuzz: virtqueue (split ring, byte level)', function () {
  this.timeout(fuzzTimeout(1));
  const raw = testGuestMemory(MEM);
  const { mem, watch } = watchedMemory(raw);
  const at = (v: number) => GuestAddress.of(v);

  it(
    fuzzTitle('random rings and driver moves: only VirtQueueError, nothing outside guest memory, bounded chains'),
    () => {
      const outcomes = new Outcomes();
      fc.assert(
        fc.property(hostileRing, (h) => {
          watch.reset();
          fillMemory(raw.regions[0].bytes, h.fill, h.bias);
          if (h.avail + 4n <= BigInt(MEM)) raw.writeU16(at(Number(h.avail) + 2), h.availIdx);
          const q = new SplitQueue(0, MAX_SIZE);
          q.size = h.size;
          q.descTable = h.desc;
          q.availRing = h.avail;
          q.usedRing = h.used;
          q.ready = true;
          const setup = expectOnly([VirtQueueError], () => q.activate(mem, VIRTIO_F_VERSION_1 | h.features));
          if (setup) {
            outcomes.add(`activate: ${(setup as VirtQueueError).kind}`);
            return;
          }
          const popped: DescriptorChain[] = [];
          for (const o of h.ops) {
            const err = expectOnly([VirtQueueError], () => {
              if (o.t === 'pop') {
                const c = q.pop();
                if (!c) return;
                outcomes.add('chain');
                for (const b of [...c.readable, ...c.writable]) expect(mem.isValidRange(b.addr, b.len)).to.equal(true);
                expect(c.readableLength + c.writableLength).to.be.at.most(0xffff_ffff);
                // a chain visits at most the table, or one indirect table within guest memory
                expect(c.readable.length + c.writable.length).to.be.at.most(MAX_SIZE + MEM / 16);
                popped.push(c);
              } else if (o.t === 'used') {
                const c = popped.shift();
                if (c) q.addUsed(c.head, o.len);
              } else if (o.t === 'notify') {
                q.needsNotification();
                q.enableNotification();
                q.disableNotification();
              } else if (o.t === 'poke') {
                mem.write(at(o.at), o.bytes.subarray(0, DATA - o.at));
              } else {
                if (h.avail + 4n <= BigInt(MEM)) mem.writeU16(at(Number(h.avail) + 2), o.v);
              }
            });
            if (err) outcomes.add((err as VirtQueueError).kind);
          }
          expect(watch.outside, 'accesses outside guest memory').to.deep.equal([]);
          expect(watch.accesses, 'bounded work per input').to.be.at.most(
            h.ops.length * (2 * MAX_SIZE + MEM / 16 + 16) + 64,
          );
        }),
        fuzzParams(),
      );
      reportOutcomes('virtqueue', outcomes, ['chain', 'activate: InvalidSize', 'InvalidAvailRingIndex'], 6);
    },
  );
});
