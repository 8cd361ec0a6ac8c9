import { expect } from 'chai';
import fc from 'fast-check';
import { GuestAddress } from '../../core/address.js';
import { MockDiskBackend, MockDiskError } from '../../core/testing/mock-disk.js';
import { testGuestMemory } from '../../core/testing/test-memory.js';
import { watchedMemory } from '../../core/testing/watched-memory.js';
import { BlkRequestType } from '../../plugins/virtio-blk/constants.js';
import { VirtioBlk } from '../../plugins/virtio-blk/device.js';
import { activateBlk, segments, type BuiltRequest } from '../../plugins/virtio-blk/testing.js';
import { FakeEventSystem } from '../../plugins/virtio/testing.js';
import { Outcomes, fuzzParams, fuzzTimeout, fuzzTitle, reportOutcomes, rssMiB, sometimes } from './support.js';

/**
 * virtio-blk request handling under a hostile driver: requests of any type, sector, length and
 * shape (short headers, missing status, split and indirect buffers, discard segments of any
 * value), then random bytes poked over the descriptor table. The disk is a MockDiskBackend that
 * records any operation outside it (the device must range-check before the backend sees it).
 */
const DISK = 64 * 1024;
const QUEUE_SIZE = 16;
const sector = fc.oneof(
  fc.bigInt({ min: 0n, max: BigInt(DISK / 512) + 2n }),
  fc.constantFrom((1n << 64n) - 1n, 1n << 55n, 1n << 63n),
  fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
);
const request = fc.record({
  type: fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(...Object.values(BlkRequestType)) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffff_ffff }) },
  ),
  sector,
  len: fc.oneof(fc.constantFrom(0, 1, 511, 512, 4096, 20), fc.integer({ min: 0, max: 8192 })),
  merged: fc.boolean(),
  split: fc.boolean(),
  indirect: fc.boolean(),
  noStatus: fc.boolean(),
  headerLen: sometimes(fc.integer({ min: 0, max: 16 }), 6),
  segs: fc.array(
    fc.record({
      sector,
      num: fc.oneof(fc.nat(300), fc.nat()),
      flags: fc.oneof(fc.constant(0), fc.constant(1), fc.nat()),
    }),
    { maxLength: 3 },
  ),
});
const hostileBlk = fc.record({
  readOnly: fc.boolean(),
  requests: fc.array(request, { minLength: 1, maxLength: 6 }),
  pokes: fc.array(
    fc.record({ at: fc.nat(16 * QUEUE_SIZE - 1), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
    { maxLength: 3 },
  ),
});

class RecordingDisk extends MockDiskBackend {
  readonly outside: string[] = [];
  constructor(readOnly: boolean) {
    super(DISK, readOnly);
  }
  private note<T>(what: string, p: Promise<T>): Promise<T> {
    return p.catch((e) => {
      if (e instanceof MockDiskError && e.kind === 'Range') this.outside.push(`${what}: ${e.message}`);
      throw e;
    });
  }
  override read(o: bigint, into: Uint8Array[]) {
    return this.note('read', super.read(o, into));
  }
  override write(o: bigint, from: Uint8Array[]) {
    return this.note('write', super.write(o, from));
  }
  override discard(o: bigint, l: bigint) {
    return this.note('discard', super.discard(o, l));
  }
  override writeZeroes(o: bigint, l: bigint) {
    return this.note('writeZeroes', super.writeZeroes(o, l));
  }
}

describe('fuzz: virtio-blk request handling', function () {
  this.timeout(fuzzTimeout(2));
  const raw = testGuestMemory(2n << 20n);
  const { mem, watch } = watchedMemory(raw);

  it(fuzzTitle('hostile requests: contained, statuses valid, nothing outside guest memory or the disk'), async () => {
    const outcomes = new Outcomes();
    const rssBefore = rssMiB();
    await fc.assert(
      fc.asyncProperty(hostileBlk, async (c) => {
        raw.regions[0].bytes.fill(0);
        watch.reset();
        const events = new FakeEventSystem();
        const disk = new RecordingDisk(c.readOnly);
        const dev = new VirtioBlk({ id: 'vda', disk, serial: 'FUZZ' }, events.loop);
        const h = activateBlk(dev, events, { queueSize: QUEUE_SIZE, queues: 1, memory: mem });
        const d = h.drivers[0];
        const built: BuiltRequest[] = [];
        for (const r of c.requests) {
          const out =
            r.type === BlkRequestType.DISCARD || r.type === BlkRequestType.WRITE_ZEROES
              ? segments(r.segs)
              : r.type === BlkRequestType.OUT
                ? new Uint8Array(r.len).fill(0x42)
                : undefined;
          const inLen = r.type === BlkRequestType.IN || r.type === BlkRequestType.GET_ID ? r.len : 0;
          built.push(
            d.request(r.type, r.sector, {
              out,
              inLen,
              merged: r.merged,
              split: r.split,
              indirect: r.indirect,
              noStatus: r.noStatus,
              headerLen: r.headerLen,
            }),
          );
        }
        for (const p of c.pokes) mem.write(GuestAddress.of(d.mq.descTable + BigInt(p.at)), p.bytes);
        h.kick(0);
        await dev.idle();
        events.run();
        await dev.idle();

        expect(events.errors, "errors out of the device's handlers").to.deep.equal([]);
        expect(watch.outside, 'accesses outside guest memory').to.deep.equal([]);
        expect(disk.outside, 'disk operations outside the disk').to.deep.equal([]);
        const used = d.mq.readUsed();
        // a poke may run into avail.idx and publish more (even repeated) heads, never more than a ring's worth
        expect(used.length).to.be.at.most(QUEUE_SIZE);
        for (const u of used) expect(u.id).to.be.below(QUEUE_SIZE);
        if (h.resets.length > 0) outcomes.add('needs reset');
        for (const [i, b] of built.entries()) {
          const st = d.status(b);
          if (c.pokes.length === 0 && h.resets.length === 0 && !c.requests[i].noStatus)
            expect([0, 1, 2, 0xff]).to.include(st);
          outcomes.add(st === 0 ? 'OK' : st === 1 ? 'IOERR' : st === 2 ? 'UNSUPP' : 'no status');
        }
        await dev.destroy?.();
      }),
      fuzzParams({ timeout: 10_000 }),
    );
    reportOutcomes('virtio-blk', outcomes, ['OK', 'IOERR', 'UNSUPP', 'needs reset'], 4);
    expect(rssMiB() - rssBefore, 'resident memory growth (MiB)').to.be.below(512);
  });
});
