/**
 * The hostile-guest program's virtio-blk attacks (hosts/guestkit/tools/hostile.c) replayed against the real
 * virtio-mmio transport and virtio-blk device over test doubles, register by register and descriptor by
 * descriptor as the program does them: each must end as attacks.ts says, and a valid read must work after.
 */
import { expect } from 'chai';
import { GuestAddress } from '../../core/address.js';
import { MockDiskBackend } from '../../core/testing/mock-disk.js';
import { Reg } from '../../plugins/virtio-mmio/registers.js';
import { mmioTestHost, type MmioDriver, type MmioTestHost } from '../../plugins/virtio-mmio/testing.js';
import { VirtioBlk } from '../../plugins/virtio-blk/device.js';
import { BLK_ATTACKS, LAPIC, PAST_RAM, type BlkOutcome } from './attacks.js';

const NEXT = 1;
const WRITE = 2;
const INDIRECT = 4;
const QSIZE = 16;
const NEEDS_RESET = 0x40;
const RING = 0x10000n; // descriptors; avail at +0x400, used at +0x800 (as the program lays them out)
const HDR = 0x11000n; // request header; status byte at +0x100
const DATA = 0x12000n;
const IND = 0x13000n;
const BIG = 0x100000n; // a 1 MiB indirect table
const SECTOR0 = Uint8Array.from([0x56, 0x49, 0x43, 0x54, 0x49, 0x4d, 0x21, 0x21]);

const a = (v: bigint): GuestAddress => GuestAddress.of(v);

/** The program's driver, in TypeScript: the same registers, layout and request. */
class HostileDriver {
  availIdx = 0;
  usedSeen = 0;
  /** Where the status byte of the last request is (the program's status_at). */
  statusAt = HDR + 0x100n;
  constructor(
    readonly t: MmioTestHost,
    readonly drv: MmioDriver,
    readonly dev: VirtioBlk,
    readonly base: bigint,
  ) {}

  desc(table: bigint, i: number, addr: bigint, len: number, flags: number, next: number): void {
    const b = new Uint8Array(16);
    const dv = new DataView(b.buffer);
    dv.setBigUint64(0, BigInt.asUintN(64, addr), true);
    dv.setUint32(8, len >>> 0, true);
    dv.setUint16(12, flags, true);
    dv.setUint16(14, next, true);
    this.t.memory.write(a(table + BigInt(16 * i)), b);
  }

  /**
   * The program's setup_with(): reset, negotiate VERSION_1 (+ INDIRECT_DESC; or every bit with `all`), queue 0,
   * DRIVER_OK (without FEATURES_OK with `skipFeaturesOk`).
   */
  setup(qsize = QSIZE, descTable = RING, o: { all?: boolean; skipFeaturesOk?: boolean } = {}): number {
    const d = this.drv;
    d.setStatus(0);
    this.t.memory.fill(a(RING), 0x1000, 0);
    this.availIdx = this.usedSeen = 0;
    d.setStatus(1);
    d.setStatus(3);
    d.write32(Reg.DeviceFeaturesSel, 0);
    const lo = d.read32(Reg.DeviceFeatures);
    d.write32(Reg.DriverFeaturesSel, 0);
    d.write32(Reg.DriverFeatures, o.all ? 0xffffffff : lo & (1 << 28));
    d.write32(Reg.DriverFeaturesSel, 1);
    d.write32(Reg.DriverFeatures, o.all ? 0xffffffff : 1);
    const fok = o.skipFeaturesOk ? 0 : 8;
    d.setStatus(3 | fok);
    d.write32(Reg.QueueSel, 0);
    d.write32(Reg.QueueNum, qsize);
    d.write64(Reg.QueueDescLow, descTable);
    d.write64(Reg.QueueDriverLow, RING + 0x400n);
    d.write64(Reg.QueueDeviceLow, RING + 0x800n);
    d.write32(Reg.QueueReady, 1);
    d.setStatus(7 | fok);
    return d.status;
  }

  readChain(table: bigint, sector = 0n): void {
    const h = new Uint8Array(16);
    new DataView(h.buffer).setBigUint64(8, sector, true);
    this.t.memory.write(a(HDR), h);
    this.t.memory.writeU8(a(HDR + 0x100n), 0xff);
    this.statusAt = HDR + 0x100n;
    this.desc(table, 0, HDR, 16, NEXT, 1);
    this.desc(table, 1, DATA, 512, WRITE | NEXT, 2);
    this.desc(table, 2, HDR + 0x100n, 1, WRITE, 0);
  }

  /** Makes `head` available (avail.idx moved by `step`) and kicks queue 0. */
  post(head: number, step = 1): void {
    this.t.memory.writeU16(a(RING + 0x404n + BigInt(2 * (this.availIdx % QSIZE))), head);
    this.availIdx = (this.availIdx + step) & 0xffff;
    this.t.memory.writeU16(a(RING + 0x402n), this.availIdx);
    this.drv.notify(0);
  }

  async outcome(): Promise<string> {
    this.t.events.run();
    await this.dev.idle();
    this.t.events.run();
    if (this.drv.status & NEEDS_RESET) return 'needs-reset';
    const used = this.t.memory.readU16(a(RING + 0x802n));
    if (used === this.usedSeen) return 'silent';
    this.usedSeen = used;
    return `used:${this.t.memory.readU8(a(this.statusAt))}`;
  }
}

/** Each attack as the program does it: edit the read request (or post by itself); true when it posted. */
type Edit = (h: HostileDriver) => boolean | void;
const indirect = (h: HostileDriver, len = 48, flags = INDIRECT, next = 0): void => {
  h.readChain(IND);
  h.desc(RING, 0, IND, len, flags, next);
};
const EDITS: Record<string, Edit> = {
  loop: (h) => h.desc(RING, 2, HDR + 0x100n, 1, WRITE | NEXT, 1),
  'past-ram': (h) => h.desc(RING, 1, PAST_RAM, 512, WRITE | NEXT, 2),
  'own-mmio': (h) => h.desc(RING, 1, h.base, 512, WRITE | NEXT, 2),
  lapic: (h) => h.desc(RING, 1, LAPIC, 512, WRITE | NEXT, 2),
  'len-4g': (h) => h.desc(RING, 1, DATA, 0xfffff000, WRITE | NEXT, 2),
  'len-wrap': (h) => h.desc(RING, 1, 0xffff_ffff_ffff_ff00n, 0x200, WRITE | NEXT, 2),
  'head-range': (h) => {
    h.post(999);
    return true;
  },
  'next-range': (h) => h.desc(RING, 1, DATA, 512, WRITE | NEXT, 4000),
  'avail-jump': (h) => {
    h.post(0, 1000);
    return true;
  },
  'ind-nested': (h) => {
    indirect(h);
    h.desc(IND, 2, IND, 48, INDIRECT, 0);
  },
  'ind-odd': (h) => indirect(h, 47),
  'ind-huge': (h) => indirect(h, 0x200000),
  'ind-loop': (h) => {
    indirect(h);
    h.desc(IND, 2, HDR + 0x100n, 1, WRITE | NEXT, 0);
  },
  'ind-next': (h) => indirect(h, 48, INDIRECT | NEXT, 1),
  'ind-past-ram': (h) => h.desc(RING, 0, PAST_RAM, 48, INDIRECT, 0),
  'sector-end': (h) => h.t.memory.write(a(HDR + 8n), u64(1n << 60n)),
  'bad-type': (h) => h.t.memory.writeU32(a(HDR), 0x7777),
  'short-hdr': (h) => h.desc(RING, 0, HDR, 7, NEXT, 1),
  'write-then-read': (h) => {
    h.desc(RING, 1, DATA, 512, NEXT, 2);
    h.desc(RING, 0, HDR, 16, WRITE | NEXT, 1);
  },
  'no-status': (h) => {
    h.desc(RING, 1, DATA, 512, WRITE, 0);
    h.statusAt = DATA + 511n;
  },
};

/** Attacks on the set-up itself (no request is posted). */
const SETUP_ATTACKS = ['size-3', 'size-huge', 'ring-past-ram', 'ring-mmio', 'feat-all', 'ok-no-feat'];

function u64(v: bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, v, true);
  return b;
}

describe('test/hostile: the hostile-guest program’s virtio-blk attacks against transport + device', function () {
  let t: MmioTestHost;
  let h: HostileDriver;
  let disk: MockDiskBackend;

  beforeEach(() => {
    t = mmioTestHost({ memorySize: 4 << 20, ioeventfd: false });
    disk = new MockDiskBackend(1 << 20);
    disk.data.set(SECTOR0, 0);
    const dev = new VirtioBlk({ id: 'victim', disk, queueSize: 256 }, t.events.loop);
    const att = t.host.attachVirtioDevice(dev);
    const base = BigInt('0x' + /@0x([0-9a-f]+)/.exec(att.location)![1]);
    h = new HostileDriver(t, t.driverAt(base), dev, base);
  });

  /** A valid one-sector read: used:0 and the disk's first bytes in the data buffer. */
  async function goodRead(): Promise<void> {
    expect(h.setup() & NEEDS_RESET).to.equal(0);
    t.memory.fill(a(DATA), 512, 0);
    h.readChain(RING);
    h.post(0);
    expect(await h.outcome()).to.equal('used:0');
    expect(t.memory.read(a(DATA), 8)).to.deep.equal(SECTOR0);
  }

  for (const [name, want] of Object.entries(BLK_ATTACKS)) {
    it(`${name}: ${want}, and a valid read works after a reset`, async () => {
      await goodRead();
      expect(await run(name)).to.equal(want);
      await goodRead();
    });
  }

  async function run(name: string): Promise<BlkOutcome | string> {
    if (SETUP_ATTACKS.includes(name)) {
      const size = name === 'size-3' ? 3 : name === 'size-huge' ? 1 << 16 : QSIZE;
      const table = name === 'ring-past-ram' ? PAST_RAM : name === 'ring-mmio' ? h.base : RING;
      const st = h.setup(size, table, { all: name === 'feat-all', skipFeaturesOk: name === 'ok-no-feat' });
      return st & NEEDS_RESET ? 'needs-reset' : st & 4 ? 'accepted' : 'refused';
    }
    expect(h.setup() & NEEDS_RESET).to.equal(0);
    h.readChain(RING);
    if (name === 'relayout') {
      h.drv.write32(Reg.QueueReady, 0);
      h.drv.write32(Reg.QueueNum, 2);
      h.drv.write64(Reg.QueueDescLow, PAST_RAM);
      h.drv.write64(Reg.QueueDeviceLow, h.base);
    } else if (name === 'storm') {
      for (let i = 0; i < 2000; i++) h.drv.notify(0);
      for (let i = 0; i < 200; i++) h.drv.notify(7);
      t.events.run();
    } else if (EDITS[name](h)) return h.outcome();
    h.post(0);
    return h.outcome();
  }

  it('a chain of 65535 descriptors in one indirect table of 1 MiB (valid, oversized) is served', async () => {
    expect(h.setup() & NEEDS_RESET).to.equal(0);
    const n = 65535;
    h.readChain(BIG);
    for (let i = 1; i < n - 1; i++) h.desc(BIG, i, DATA, 0, WRITE | NEXT, i + 1);
    h.desc(BIG, 1, DATA, 512, WRITE | NEXT, 2);
    h.desc(BIG, n - 1, HDR + 0x100n, 1, WRITE, 0);
    h.desc(RING, 0, BIG, n * 16, INDIRECT, 0);
    h.post(0);
    expect(await h.outcome()).to.equal('used:0');
  });

  it('reset storm: 500 set-ups with a read posted and a reset each leave no watchers behind, and reads still work', async () => {
    expect(h.setup() & NEEDS_RESET).to.equal(0);
    const watched = t.events.watched;
    for (let i = 0; i < 500; i++) {
      h.setup();
      h.readChain(RING);
      h.post(0);
      h.drv.setStatus(0);
    }
    t.events.run();
    await h.dev.idle();
    await goodRead(); // set up once more: as many watchers as after the first set-up
    expect(t.events.watched).to.equal(watched);
  });
});
