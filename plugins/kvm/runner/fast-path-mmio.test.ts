import { expect } from 'chai';
import { GuestRange } from '../../../core/address.js';
import type { MmioFastPath } from '../../../core/bus/fast-path.js';
import { RangeBus } from '../../../core/bus/range-bus.js';
import { FAST, PUSH, TxRing } from './fast-path.js';
import { FastPathHost } from './fast-path-host.js';
import { fastMmio, MMIO_CELLS, MMIO_FLAG, MmioTable } from './fast-path-mmio.js';
import { IRQ_ACK, IRQ_STATUS, IrqDevice, SharedIrqDevice } from './irq-test-devices.js';

const BASE = 0xd000_1000;
const STATUS = IRQ_STATUS,
  ACK = IRQ_ACK;
/** A kvm_run stand-in: the MMIO data at offset 8. */
const OFF = 8;
const page = (v = 0): Uint8Array => {
  const p = new Uint8Array(16);
  new DataView(p.buffer).setUint32(OFF, v >>> 0, true);
  return p;
};
const word = (p: Uint8Array): number => new DataView(p.buffer).getUint32(OFF, true);

function setup(vcpus = 1) {
  const bus = new RangeBus();
  const dev = new IrqDevice();
  const reg = bus.register('mmio', GuestRange.of(BASE, 0x1000), dev, 'virtio0');
  const host = new FastPathHost(bus);
  const rings = Array.from({ length: vcpus }, () => host.addRing());
  host.sync();
  const t = host.mmio.table.words;
  const exit = (cpu: number, isWrite: boolean, addr: number, p: Uint8Array, len = 4, hi = 0): number =>
    fastMmio(
      t,
      rings[cpu],
      isWrite,
      addr,
      hi,
      len,
      p,
      OFF,
      rings.filter((_, i) => i !== cpu),
    );
  return { bus, dev, reg, host, rings, exit };
}

describe('worker fast path: MMIO', () => {
  it('answers a published 4-byte read from the mirror, with the value the device published last', () => {
    const { dev, exit } = setup();
    const p = page(0xdeadbeef);
    expect(exit(0, false, BASE + STATUS, p)).to.equal(FAST.MMIO_READ);
    expect(word(p)).to.equal(0);
    dev.raise(1);
    expect(exit(0, false, BASE + STATUS, p)).to.equal(FAST.MMIO_READ);
    expect(word(p)).to.equal(1);
    dev.raise(0x8000_0002); // the whole unsigned word
    expect(exit(0, false, BASE + STATUS, p)).to.equal(FAST.MMIO_READ);
    expect(word(p)).to.equal(0x8000_0003);
    expect(dev.log, 'the device saw none of it').to.deep.equal([]);
  });

  it('hops for anything not published or not a plain 4-byte access below 4 GiB', () => {
    const { exit } = setup();
    expect(exit(0, false, BASE + 0x70, page())).to.equal(FAST.HOP); // Status: not published
    expect(exit(0, false, BASE + STATUS, page(), 2)).to.equal(FAST.HOP);
    expect(exit(0, false, BASE + STATUS, page(), 4, 1)).to.equal(FAST.HOP);
    expect(exit(0, true, BASE + STATUS, page(1))).to.equal(FAST.HOP); // read-only mirror: writes hop
    expect(exit(0, false, BASE + ACK, page())).to.equal(FAST.HOP); // write-queued only: reads hop
  });

  it('queues an ACK; the next read hops, and the drain delivers the ACK before the read is handled', () => {
    const { dev, host, rings, bus, exit } = setup();
    dev.raise(1);
    expect(exit(0, true, BASE + ACK, page(1))).to.equal(FAST.MMIO_RING_NOTIFY);
    expect(dev.status, 'not delivered yet').to.equal(1);
    const p = page();
    expect(exit(0, false, BASE + STATUS, p), 'the mirror is stale while the ACK waits').to.equal(FAST.HOP);
    // What the runner does with the hop: drain first, then the access goes to the bus.
    host.drainAll();
    bus.read('mmio', BigInt(BASE + STATUS), p.subarray(OFF, OFF + 4));
    expect(word(p)).to.equal(0);
    expect(dev.log).to.deep.equal(['w64=1', 'r60']);
    expect(rings[0].length).to.equal(0);
    expect(exit(0, false, BASE + STATUS, p)).to.equal(FAST.MMIO_READ);
    expect(word(p)).to.equal(0);
  });

  it("another vCPU's queued write makes reads and queued writes hop (cross-vCPU order)", () => {
    const { dev, host, exit } = setup(2);
    dev.raise(3);
    expect(exit(1, true, BASE + ACK, page(1))).to.equal(FAST.MMIO_RING_NOTIFY);
    expect(exit(0, false, BASE + STATUS, page())).to.equal(FAST.HOP);
    expect(exit(0, true, BASE + ACK, page(2))).to.equal(FAST.HOP);
    host.drainAll();
    const p = page();
    expect(exit(0, false, BASE + STATUS, p)).to.equal(FAST.MMIO_READ);
    expect(word(p)).to.equal(2);
  });

  it('keeps program order between queued PIO bytes and MMIO words in one ring', () => {
    const bus = new RangeBus();
    const dev = new IrqDevice();
    bus.register('mmio', GuestRange.of(BASE, 0x1000), dev, 'virtio0');
    const seen: string[] = [];
    bus.register(
      'pio',
      GuestRange.of(0x3f8, 8),
      {
        read: () => {},
        write: (o, d) => {
          seen.push(`pio${o}=${d[0]}`);
          dev.log.push(`pio=${d[0]}`);
        },
      },
      'uart',
    );
    const host = new FastPathHost(bus);
    const ring = host.addRing();
    host.sync();
    expect(ring.push(0x3f8, 65)).to.equal(PUSH.NOTIFY);
    expect(fastMmio(host.mmio.table.words, ring, true, BASE + ACK, 0, 4, page(7), OFF)).to.equal(FAST.MMIO_RING);
    expect(ring.push(0x3f8, 66)).to.equal(PUSH.OK);
    host.drainAll();
    expect(dev.log).to.deep.equal(['pio=65', 'w64=7', 'pio=66']);
    expect(host.drained).to.equal(3);
  });

  it('an MMIO entry needs three free slots and never splits across a full ring', () => {
    const r = TxRing.create(4);
    expect(r.push(1, 1)).to.equal(PUSH.NOTIFY);
    expect(r.push(1, 2)).to.equal(PUSH.OK);
    expect(r.pushMmio(0x1000, 5)).to.equal(PUSH.FULL);
    const got: string[] = [];
    r.drain(
      (p, b) => got.push(`p${b}`),
      (a, v) => got.push(`m${a}=${v}`),
    );
    // Wrap: the three words straddle the end of the buffer.
    expect(r.pushMmio(0xd000_1064, 0xffff_fffe)).to.equal(PUSH.NOTIFY);
    r.drain(
      (p, b) => got.push(`p${b}`),
      (a, v) => got.push(`m${a.toString(16)}=${v.toString(16)}`),
    );
    expect(got).to.deep.equal(['p1', 'p2', 'md0001064=fffffffe']);
    expect(r.fullCount).to.equal(1);
  });

  it('follows bus changes: an unregistered device stops being answered for; a torn table update hops', () => {
    const { reg, host, exit, dev } = setup();
    expect(exit(0, false, BASE + STATUS, page())).to.equal(FAST.MMIO_READ);
    Atomics.add(host.mmio.table.words, 0, 1); // a writer in the middle of an update
    expect(exit(0, false, BASE + STATUS, page())).to.equal(FAST.HOP);
    Atomics.add(host.mmio.table.words, 0, 1);
    reg.dispose();
    host.sync();
    expect(host.mmio.table.count).to.equal(0);
    expect(dev.fp, 'the device was detached').to.equal(undefined);
    expect(exit(0, false, BASE + STATUS, page())).to.equal(FAST.HOP);
  });

  it('the table ignores entries it cannot hold and addresses at or above 4 GiB', () => {
    const t = new MmioTable();
    expect(
      t.replace([
        { address: 2 ** 32, flags: MMIO_FLAG.READ, value: 1 },
        { address: 0x1000, flags: 0, value: 1 },
        { address: 0x2000, flags: MMIO_FLAG.READ, value: 9 },
      ]),
    ).to.equal(1);
    const p = page();
    expect(fastMmio(t.words, undefined, false, 0x2000, 0, 4, p, OFF)).to.equal(FAST.MMIO_READ);
    expect(word(p)).to.equal(9);
    expect(fastMmio(t.words, undefined, false, 0, 0, 4, p, OFF)).to.equal(FAST.HOP);
  });
});

function sharedSetup(vcpus = 1, devices = 1) {
  const bus = new RangeBus();
  const devs = Array.from({ length: devices }, (_, i) => new SharedIrqDevice(i === 0 ? 1 : 0));
  const regs = devs.map((d, i) => bus.register('mmio', GuestRange.of(BASE + i * 0x1000, 0x1000), d, `virtio${i}`));
  const host = new FastPathHost(bus);
  const rings = Array.from({ length: vcpus }, () => host.addRing());
  host.sync();
  const t = host.mmio.table.words;
  const exit = (cpu: number, isWrite: boolean, addr: number, p: Uint8Array): number =>
    fastMmio(
      t,
      rings[cpu],
      isWrite,
      addr,
      0,
      4,
      p,
      OFF,
      rings.filter((_, i) => i !== cpu),
    );
  return { bus, dev: devs[0], devs, regs, host, rings, exit };
}

describe('worker fast path: MMIO shared clearable word (virtio-mmio InterruptStatus/ACK)', () => {
  it('reads the word and applies an ACK on the worker at once; the device saw neither access', () => {
    const { dev, exit } = sharedSetup();
    const p = page();
    expect(exit(0, false, BASE + STATUS, p)).to.equal(FAST.MMIO_READ);
    expect(word(p), 'the status the device had before the attach').to.equal(1);
    dev.raise(2);
    expect(exit(0, false, BASE + STATUS, p)).to.equal(FAST.MMIO_READ);
    expect(word(p)).to.equal(3);
    expect(exit(0, true, BASE + ACK, page(1))).to.equal(FAST.MMIO_READ); // completed on the worker
    expect(dev.status, 'cleared before the guest runs on').to.equal(2);
    expect(dev.log).to.deep.equal([]);
  });

  it('read, raise, ACK of what was read: the bit raised after the read stays set', () => {
    const { dev, exit } = sharedSetup();
    const p = page();
    expect(exit(0, false, BASE + STATUS, p)).to.equal(FAST.MMIO_READ);
    const seen = word(p);
    dev.raise(2);
    exit(0, true, BASE + ACK, page(seen));
    expect(exit(0, false, BASE + STATUS, p)).to.equal(FAST.MMIO_READ);
    expect(word(p)).to.equal(2);
    // ACK, then raise of the same bit: set again (nothing clears it later).
    exit(0, true, BASE + ACK, page(2));
    dev.raise(2);
    exit(0, false, BASE + STATUS, p);
    expect(word(p)).to.equal(2);
  });

  it('an ACK clears only the masked bits the guest wrote', () => {
    const { dev, exit } = sharedSetup();
    dev.word!.or(0x10); // outside the mask: only the device could have set it
    exit(0, true, BASE + ACK, page(0xffff_ffff));
    expect(dev.status).to.equal(0x10);
  });

  it('hops while this or another vCPU has queued writes (program order), then goes on', () => {
    const { dev, host, rings, exit } = sharedSetup(2);
    expect(rings[1].push(0x3f8, 65)).to.equal(PUSH.NOTIFY);
    expect(exit(0, false, BASE + STATUS, page())).to.equal(FAST.HOP);
    expect(exit(0, true, BASE + ACK, page(1))).to.equal(FAST.HOP);
    expect(exit(1, true, BASE + ACK, page(1)), 'own ring not empty').to.equal(FAST.HOP);
    expect(dev.status).to.equal(1);
    host.drainAll();
    expect(exit(0, true, BASE + ACK, page(1))).to.equal(FAST.MMIO_READ);
    expect(dev.status).to.equal(0);
  });

  it('the device cannot overwrite a shared register with setReadValue/setWriteMode; a detached device hops to the same word', () => {
    const bus = new RangeBus();
    let fpRef: MmioFastPath | undefined;
    const dev = new SharedIrqDevice(1);
    const attach = dev.attachMmioFastPath.bind(dev);
    dev.attachMmioFastPath = (fp) => {
      fpRef = fp;
      return attach(fp);
    };
    const reg = bus.register('mmio', GuestRange.of(BASE, 0x1000), dev, 'virtio0');
    const host = new FastPathHost(bus);
    const ring = host.addRing();
    host.sync();
    fpRef!.setReadValue(STATUS, 7);
    fpRef!.setWriteMode(ACK, 'queue');
    const p = page();
    expect(fastMmio(host.mmio.table.words, ring, false, BASE + STATUS, 0, 4, p, OFF)).to.equal(FAST.MMIO_READ);
    expect(word(p)).to.equal(1);
    expect(fastMmio(host.mmio.table.words, ring, true, BASE + ACK, 0, 4, page(1), OFF)).to.equal(FAST.MMIO_READ);
    expect(ring.length, 'not queued').to.equal(0);
    dev.raise(1);
    reg.dispose();
    host.sync();
    expect(fastMmio(host.mmio.table.words, ring, false, BASE + STATUS, 0, 4, p, OFF)).to.equal(FAST.HOP);
    expect(dev.status, 'the device keeps its word').to.equal(1);
  });

  it('hands out each cell once; when none is left the device keeps its register itself', () => {
    const t = new MmioTable();
    const cells = Array.from({ length: MMIO_CELLS }, () => t.allocateCell());
    expect(cells.every((c) => c !== undefined)).to.equal(true);
    expect(new Set(cells.map((c) => c!.index)).size).to.equal(MMIO_CELLS);
    expect(t.allocateCell()).to.equal(undefined);
    // Cells survive table rewrites.
    cells[3]!.or(5);
    t.replace([{ address: 0x2000, flags: MMIO_FLAG.READ_CELL, value: 3 }]);
    const p = page();
    expect(fastMmio(t.words, undefined, false, 0x2000, 0, 4, p, OFF)).to.equal(FAST.MMIO_READ);
    expect(word(p)).to.equal(5);
    // A cell index out of range (a corrupt entry) hops.
    t.replace([
      { address: 0x2000, flags: MMIO_FLAG.READ_CELL, value: MMIO_CELLS },
      { address: 0x2004, flags: MMIO_FLAG.CLEAR_CELL, value: -1, mask: 1 },
    ]);
    expect(fastMmio(t.words, undefined, false, 0x2000, 0, 4, p, OFF)).to.equal(FAST.HOP);
    expect(fastMmio(t.words, undefined, true, 0x2004, 0, 4, page(1), OFF)).to.equal(FAST.HOP);
  });

  it('two devices get separate words', () => {
    const { devs, exit } = sharedSetup(1, 2);
    devs[1].raise(2);
    exit(0, true, BASE + ACK, page(1));
    const p = page();
    exit(0, false, BASE + 0x1000 + STATUS, p);
    expect(word(p)).to.equal(2);
    expect(devs[0].status).to.equal(0);
  });
});
