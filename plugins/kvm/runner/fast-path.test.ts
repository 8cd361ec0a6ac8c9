import { expect } from 'chai';
import { GuestRange } from '../../../core/address.js';
import type { BusDevice, Disposable } from '../../../core/bus/bus.js';
import type { PioFastPath, PioFastPathPublisher } from '../../../core/bus/fast-path.js';
import { RangeBus } from '../../../core/bus/range-bus.js';
import { entry, FAST, fastPio, PortTable, PUSH, RING_HDR, TxRing, WRITE } from './fast-path.js';
import { FastPathHost } from './fast-path-host.js';

/** A kvm_run stand-in: the exit's data byte at offset 8. */
const page = (): Uint8Array => new Uint8Array(16);
const OFF = 8;

const drainAll = (r: TxRing): [number, number][] => {
  const got: [number, number][] = [];
  r.drain((p, b) => got.push([p, b]));
  return got;
};

describe('worker fast path: TxRing', () => {
  it('keeps order across many wrap-arounds and wakes the consumer once per drain', () => {
    const r = TxRing.create(4);
    const seen: number[] = [];
    let next = 0;
    for (let round = 0; round < 50; round++) {
      const n = 1 + (round % 4);
      const results = [];
      for (let i = 0; i < n; i++) results.push(r.push(0x3f8, next++ & 0xff));
      expect(results[0], 'first push after a drain wakes the consumer').to.equal(PUSH.NOTIFY);
      expect(
        results.slice(1).every((x) => x === PUSH.OK),
        'later pushes owe no wake-up',
      ).to.equal(true);
      expect(r.length).to.equal(n);
      for (const [p, b] of drainAll(r)) {
        expect(p).to.equal(0x3f8);
        seen.push(b);
      }
    }
    expect(seen).to.deep.equal(Array.from({ length: next }, (_, i) => i & 0xff));
    expect(r.notifyCount).to.equal(50);
  });

  it('works across the int32 wrap of its free-running counters', () => {
    const r = TxRing.create(8);
    Atomics.store(r.hdr, RING_HDR.HEAD, 0x7ffffffd);
    Atomics.store(r.hdr, RING_HDR.TAIL, 0x7ffffffd);
    for (let i = 0; i < 8; i++) expect(r.push(0x100 + i, i)).to.not.equal(PUSH.FULL);
    expect(r.length).to.equal(8);
    expect(r.push(1, 1), 'full').to.equal(PUSH.FULL);
    expect(drainAll(r)).to.deep.equal(Array.from({ length: 8 }, (_, i) => [0x100 + i, i]));
    expect(Atomics.load(r.hdr, RING_HDR.HEAD)).to.be.lessThan(0); // wrapped
    expect(r.length).to.equal(0);
  });

  it('refuses pushes when full (counted), and takes them again once drained', () => {
    const r = TxRing.create(2);
    expect(r.push(1, 1)).to.equal(PUSH.NOTIFY);
    expect(r.push(1, 2)).to.equal(PUSH.OK);
    expect(r.push(1, 3)).to.equal(PUSH.FULL);
    expect(r.fullCount).to.equal(1);
    expect(drainAll(r).map(([, b]) => b)).to.deep.equal([1, 2]);
    expect(r.push(1, 4)).to.equal(PUSH.NOTIFY);
  });

  it('does not replay a write whose delivery threw', () => {
    const r = TxRing.create(4);
    r.push(1, 1);
    r.push(1, 2);
    expect(() =>
      r.drain(() => {
        throw new Error('device broke');
      }),
    ).to.throw('device broke');
    expect(drainAll(r).map(([, b]) => b)).to.deep.equal([2]);
  });

  it('rejects bad capacities and buffers', () => {
    expect(() => TxRing.create(3)).to.throw(RangeError);
    expect(() => TxRing.create(0)).to.throw(RangeError);
    expect(() => new TxRing(new SharedArrayBuffer(4 * 8 + 12))).to.throw(RangeError);
    expect(() => new PortTable(new SharedArrayBuffer(16))).to.throw(RangeError);
  });
});

describe('worker fast path: fastPio decisions', () => {
  it('queues 1-byte writes to a ring port, hops when the ring is full', () => {
    const t = new PortTable();
    const r = TxRing.create(2);
    t.set(0x3f8, entry(undefined, WRITE.RING));
    const d = page();
    d[OFF] = 0x41;
    expect(fastPio(t.words, r, true, 0x3f8, 1, 1, d, OFF)).to.equal(FAST.RING_NOTIFY);
    d[OFF] = 0x42;
    expect(fastPio(t.words, r, true, 0x3f8, 1, 1, d, OFF)).to.equal(FAST.RING);
    expect(fastPio(t.words, r, true, 0x3f8, 1, 1, d, OFF), 'full: the main thread takes it').to.equal(FAST.HOP);
    expect(fastPio(t.words, undefined, true, 0x3f8, 1, 1, d, OFF), 'no ring').to.equal(FAST.HOP);
    expect(drainAll(r)).to.deep.equal([
      [0x3f8, 0x41],
      [0x3f8, 0x42],
    ]);
    expect(fastPio(t.words, r, false, 0x3f8, 1, 1, d, OFF), 'reads of a ring port hop').to.equal(FAST.HOP);
  });

  it('answers reads from a published value, and hops once the value is withdrawn (stale)', () => {
    const t = new PortTable();
    const d = page();
    t.set(0x3fd, entry(0x60, WRITE.HOP));
    expect(fastPio(t.words, undefined, false, 0x3fd, 1, 1, d, OFF)).to.equal(FAST.READ);
    expect(d[OFF]).to.equal(0x60);
    expect(fastPio(t.words, undefined, true, 0x3fd, 1, 1, d, OFF), 'writes still hop').to.equal(FAST.HOP);
    t.set(0x3fd, entry(undefined, WRITE.HOP)); // the device latched OE: reading must clear it
    d[OFF] = 0x11;
    expect(fastPio(t.words, undefined, false, 0x3fd, 1, 1, d, OFF)).to.equal(FAST.HOP);
    expect(d[OFF], 'data left for the device').to.equal(0x11);
  });

  it('drops writes and answers reads of ignored ports; anything wider or repeated hops', () => {
    const t = new PortTable();
    const r = TxRing.create(4);
    t.set(0x80, entry(0xff, WRITE.DROP));
    t.set(0x81, entry(0xff, WRITE.DROP));
    t.set(0x3f8, entry(undefined, WRITE.RING));
    const d = page();
    expect(fastPio(t.words, r, true, 0x80, 1, 1, d, OFF)).to.equal(FAST.DROP);
    expect(fastPio(t.words, r, false, 0x80, 1, 1, d, OFF)).to.equal(FAST.READ);
    expect(d[OFF]).to.equal(0xff);
    expect(fastPio(t.words, r, false, 0x80, 2, 1, d, OFF), 'inw').to.equal(FAST.HOP);
    expect(fastPio(t.words, r, true, 0x3f8, 1, 3, d, OFF), 'rep outsb').to.equal(FAST.HOP);
    expect(fastPio(t.words, r, true, 0x3f8, 1, 1, d, 99), 'data outside the page').to.equal(FAST.HOP);
    expect(fastPio(t.words, r, true, 0x3f9, 1, 1, d, OFF), 'unpublished port').to.equal(FAST.HOP);
    expect(r.length).to.equal(0);
  });
});

/** A device publishing like the UART: offset 0 queued, offset 5 answered with `lsr` (undefined = stale). */
class Publisher implements BusDevice, PioFastPathPublisher {
  readonly log: string[] = [];
  fp?: PioFastPath;
  detached = 0;
  read(offset: bigint, data: Uint8Array): void {
    this.log.push(`r${offset}`);
    data[0] = 0x42;
  }
  write(offset: bigint, data: Uint8Array): void {
    this.log.push(`w${offset}=${String.fromCharCode(data[0])}`);
  }
  attachPioFastPath(fp: PioFastPath): Disposable {
    this.fp = fp;
    fp.setWriteMode(0, 'queue');
    fp.setReadValue(5, 0x60);
    return {
      dispose: () => {
        this.detached++;
      },
    };
  }
}

describe('worker fast path: FastPathHost (main thread side)', () => {
  it('builds the table on the first sync even when the Bus is empty (every port unclaimed)', () => {
    const host = new FastPathHost(new RangeBus());
    host.sync();
    expect(host.table.get(0x80)).to.equal(entry(0xff, WRITE.DROP));
    expect(host.table.get(0)).to.equal(entry(0xff, WRITE.DROP));
    expect(host.table.get(0xffff)).to.equal(entry(0xff, WRITE.DROP));
  });

  it('ignores unclaimed ports, leaves claimed ones to the bus, and attaches publishers', () => {
    const bus = new RangeBus();
    const dev = new Publisher();
    bus.register('pio', GuestRange.of(0x3f8, 8), dev, 'uart');
    bus.register('pio', GuestRange.of(0x70, 2), { read: () => {}, write: () => {} }, 'rtc');
    const host = new FastPathHost(bus);
    host.sync();
    expect(host.table.get(0x80)).to.equal(entry(0xff, WRITE.DROP));
    expect(host.table.get(0x70)).to.equal(0);
    expect(host.table.get(0x71)).to.equal(0);
    expect(host.table.get(0x3f8)).to.equal(entry(undefined, WRITE.RING));
    expect(host.table.get(0x3fd)).to.equal(entry(0x60, WRITE.HOP));
    expect(host.table.get(0x3f9)).to.equal(0);
    expect(host.summary().devices).to.deep.equal(['uart']);
    // a device may not publish outside its own range
    dev.fp!.setReadValue(8, 1);
    dev.fp!.setWriteMode(-1, 'drop');
    expect(host.table.get(0x400)).to.equal(entry(0xff, WRITE.DROP));
    expect(host.table.get(0x3f7)).to.equal(entry(0xff, WRITE.DROP));
    // a value outside a byte withdraws it rather than publishing garbage
    dev.fp!.setReadValue(5, 300);
    expect(host.table.get(0x3fd)).to.equal(0);
  });

  it('drains rings into the bus in order before anything else, and follows (un)registrations', () => {
    const bus = new RangeBus();
    const dev = new Publisher();
    const reg = bus.register('pio', GuestRange.of(0x3f8, 8), dev, 'uart');
    const host = new FastPathHost(bus);
    const ring = host.addRing();
    host.sync();
    const d = page();
    for (const ch of 'hi') {
      d[OFF] = ch.charCodeAt(0);
      expect(fastPio(host.table.words, ring, true, 0x3f8, 1, 1, d, OFF)).to.not.equal(FAST.HOP);
    }
    expect(dev.log, 'nothing reached the device yet').to.deep.equal([]);
    // What the runner does for a hopping access: drain, then the access.
    host.drainAll();
    bus.read('pio', 0x3fan, d.subarray(OFF, OFF + 1));
    expect(dev.log).to.deep.equal(['w0=h', 'w0=i', 'r2']);
    expect(host.drained).to.equal(2);

    // A new device where there was nothing: its port hops from now on.
    bus.register('pio', GuestRange.of(0x80, 1), { read: () => {}, write: () => {} }, 'post');
    host.sync();
    expect(host.table.get(0x80)).to.equal(0);
    // The UART goes away with a write still queued: it is delivered first, then the ports are ignored.
    d[OFF] = 0x21;
    fastPio(host.table.words, ring, true, 0x3f8, 1, 1, d, OFF);
    reg.dispose();
    // (delivered to the bus as it is now: the UART is gone, so nobody gets it; sync drains before rebuilding)
    host.sync();
    expect(ring.length).to.equal(0);
    expect(dev.detached).to.equal(1);
    expect(host.table.get(0x3f8)).to.equal(entry(0xff, WRITE.DROP));
    dev.fp!.setWriteMode(0, 'queue');
    expect(host.table.get(0x3f8), 'a detached handle is inert').to.equal(entry(0xff, WRITE.DROP));
  });

  it('with ignoreUnclaimed off, unclaimed ports hop; a publisher that throws is left on the normal path', () => {
    const bus = new RangeBus();
    const bad: BusDevice & PioFastPathPublisher = {
      read: () => {},
      write: () => {},
      attachPioFastPath: (fp) => {
        fp.setWriteMode(0, 'queue');
        throw new Error('nope');
      },
    };
    bus.register('pio', GuestRange.of(0x2f8, 8), bad, 'bad');
    const host = new FastPathHost(bus, { ignoreUnclaimed: false });
    host.sync();
    expect(host.table.get(0x80)).to.equal(0);
    expect(host.table.get(0x2f8)).to.equal(0);
    expect(host.summary().devices).to.deep.equal([]);
  });
});

describe('worker fast path: several vCPUs', () => {
  it('queues a write only while every other vCPU ring is empty (cross-vCPU order kept by hopping)', () => {
    const t = new PortTable();
    t.set(0x3f8, entry(undefined, WRITE.RING));
    const r0 = TxRing.create(8),
      r1 = TxRing.create(8);
    const d = page();
    d[OFF] = 0x41;
    expect(fastPio(t.words, r1, true, 0x3f8, 1, 1, d, OFF, [r0])).to.equal(FAST.RING_NOTIFY); // vCPU1 first
    d[OFF] = 0x42;
    expect(
      fastPio(t.words, r0, true, 0x3f8, 1, 1, d, OFF, [r1]),
      'vCPU0 after it: hop (the hop drains ring 1 first)',
    ).to.equal(FAST.HOP);
    expect(fastPio(t.words, r1, true, 0x3f8, 1, 1, d, OFF, [r0]), 'vCPU1 again: its own ring may grow').to.equal(
      FAST.RING,
    );
    drainAll(r1);
    expect(fastPio(t.words, r0, true, 0x3f8, 1, 1, d, OFF, [r1])).to.equal(FAST.RING_NOTIFY);
  });
});
