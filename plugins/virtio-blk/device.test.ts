import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import sinon from 'sinon';
import type { DiskBackend } from '../../core/block/disk.js';
import { GuestAddress } from '../../core/address.js';
import { MockDiskBackend } from '../../core/testing/mock-disk.js';
import { VIRTIO_F_RING_EVENT_IDX, VIRTIO_F_VERSION_1 } from '../../core/virtio/virtio.js';
import { FakeEventSystem, HIGH_PAGE, memoryWithHighPage } from '../virtio/testing.js';
import { RawFileDisk } from '../raw-disk/raw-disk.js';
import { BlkConfigLayout, BLK_CONFIG_SIZE } from './config-space.js';
import {
  BlkRequestType as T,
  BlkStatus,
  VIRTIO_BLK_F_DISCARD,
  VIRTIO_BLK_F_FLUSH,
  VIRTIO_BLK_F_MQ,
  VIRTIO_BLK_F_RO,
  VIRTIO_BLK_F_WRITE_ZEROES,
  MAX_DISCARD_SEGMENTS,
} from './constants.js';
import { VirtioBlk, type VirtioBlkOptions } from './device.js';
import { activateBlk, header, segments, type ActivatedBlk } from './testing.js';

const MiB = 1 << 20;
const { OK, IOERR, UNSUPP } = BlkStatus;

function cfg(dev: VirtioBlk): DataView {
  const b = new Uint8Array(BLK_CONFIG_SIZE);
  dev.readConfig(0, b);
  return new DataView(b.buffer);
}

describe('plugins/virtio-blk VirtioBlk', () => {
  let events: FakeEventSystem;
  beforeEach(() => {
    events = new FakeEventSystem();
  });

  function make(disk: DiskBackend = new MockDiskBackend(MiB), o: Partial<VirtioBlkOptions> = {}): VirtioBlk {
    return new VirtioBlk({ id: 'vda', disk, serial: 'SERIAL-0123456789-ABCDEF', ...o }, events.loop);
  }
  /** Kicks queue `i` and waits until every request completed and was returned. */
  async function run(h: ActivatedBlk, dev: VirtioBlk, i = 0): Promise<void> {
    h.kick(i);
    await dev.idle();
  }

  describe('features and config space', () => {
    it('offers the block features and lays config out per virtio 1.2 §5.2.4', () => {
      const dev = make(new MockDiskBackend(3 * MiB + 100), { queueSize: 128 });
      expect(dev.deviceType).to.equal(2);
      const f = dev.deviceFeatures;
      for (const bit of [
        VIRTIO_F_VERSION_1,
        VIRTIO_F_RING_EVENT_IDX,
        VIRTIO_BLK_F_FLUSH,
        VIRTIO_BLK_F_DISCARD,
        VIRTIO_BLK_F_WRITE_ZEROES,
      ]) {
        expect(f & bit).to.equal(bit);
      }
      expect(f & VIRTIO_BLK_F_RO).to.equal(0n);
      expect(f & VIRTIO_BLK_F_MQ).to.equal(0n);
      const c = cfg(dev);
      expect(c.getBigUint64(BlkConfigLayout.capacity, true)).to.equal(BigInt((3 * MiB) / 512)); // partial sector hidden
      expect(c.getUint32(BlkConfigLayout.segMax, true)).to.equal(126);
      expect(c.getUint32(BlkConfigLayout.blkSize, true)).to.equal(512);
      expect(c.getUint16(BlkConfigLayout.numQueues, true)).to.equal(1);
      expect(c.getUint32(BlkConfigLayout.maxDiscardSeg, true)).to.equal(MAX_DISCARD_SEGMENTS);
      expect(c.getUint32(BlkConfigLayout.discardSectorAlignment, true)).to.equal(1);
      expect(c.getUint8(BlkConfigLayout.writeZeroesMayUnmap)).to.equal(1);
    });

    it('offers RO (and no discard) for a read-only disk, MQ with several queues', () => {
      const ro = make(new MockDiskBackend(MiB, true));
      expect(ro.deviceFeatures & VIRTIO_BLK_F_RO).to.equal(VIRTIO_BLK_F_RO);
      expect(ro.deviceFeatures & VIRTIO_BLK_F_DISCARD).to.equal(0n);
      const mq = make(undefined, { numQueues: 4 });
      expect(mq.deviceFeatures & VIRTIO_BLK_F_MQ).to.equal(VIRTIO_BLK_F_MQ);
      expect(mq.queueMaxSizes).to.have.length(4);
      expect(cfg(mq).getUint16(BlkConfigLayout.numQueues, true)).to.equal(4);
    });

    it('reads past the config space as zeros and ignores config writes', () => {
      const dev = make();
      const b = new Uint8Array(4).fill(9);
      dev.readConfig(58, b);
      expect([...b]).to.deep.equal([0, 0, 0, 0]);
      dev.writeConfig(0, new Uint8Array(8).fill(1));
      expect(cfg(dev).getBigUint64(0, true)).to.equal(BigInt(MiB / 512));
    });

    it('rejects bad queue settings', () => {
      expect(() => make(undefined, { queueSize: 100 })).to.throw(/power of two/);
      expect(() => make(undefined, { numQueues: 0 })).to.throw(/numQueues/);
    });
  });

  describe('happy paths on a real temp file', () => {
    let dir: string, file: string;
    beforeEach(() => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vblk-'));
      file = path.join(dir, 'disk.img');
      fs.writeFileSync(file, randomBytes(4 * MiB));
    });
    afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

    it('writes then reads (split and merged buffers, indirect chains), one interrupt per batch', async () => {
      const dev = make(RawFileDisk.open({ path: file, readOnly: false }));
      const h = activateBlk(dev, events);
      const d = h.drivers[0];
      const a = randomBytes(4096),
        b = randomBytes(1024);
      const w1 = d.write(8n, a, { split: true });
      const w2 = d.write(100n, b, { merged: true, indirect: true });
      await run(h, dev);
      expect([d.status(w1), d.status(w2)]).to.deep.equal([OK, OK]);
      expect(h.interrupts).to.deep.equal([0]);
      const used = d.mq.readUsed();
      expect(used.map((u) => u.len)).to.deep.equal([1, 1]);
      const onDisk = fs.readFileSync(file);
      expect(Buffer.compare(onDisk.subarray(8 * 512, 8 * 512 + 4096), a)).to.equal(0);
      expect(Buffer.compare(onDisk.subarray(100 * 512, 100 * 512 + 1024), b)).to.equal(0);

      const r = d.read(8n, 4096, { split: true, indirect: true });
      await run(h, dev);
      expect(d.status(r)).to.equal(OK);
      expect(Buffer.compare(d.data(r), a)).to.equal(0);
      expect(d.mq.readUsed()).to.deep.equal([{ id: r.head, len: 4097 }]);
      const m = dev.metrics.total();
      expect([m.requests, m.writes, m.reads, m.writeBytes, m.readBytes, m.ioErrors]).to.deep.equal([
        3, 2, 1, 5120, 4096, 0,
      ]);
      await dev.destroy();
    });

    it('any layout: a header split over two buffers, status sharing the data buffer, merged discard', async () => {
      const dev = make(RawFileDisk.open({ path: file, readOnly: false }));
      const h = activateBlk(dev, events);
      const d = h.drivers[0];
      const mq = d.mq;
      const hdr = header(T.IN, 16n);
      // Read: header as 8 + 8 bytes, then 1024 data bytes and the status byte in one buffer.
      const h1 = mq.alloc(8, hdr.subarray(0, 8)),
        h2 = mq.alloc(8, hdr.subarray(8));
      const data = mq.alloc(1025);
      const head = mq.addChain([
        { addr: h1, len: 8 },
        { addr: h2, len: 8 },
        { addr: data, len: 1025, write: true },
      ]);
      // Write: header and data in one buffer (the data starts 16 bytes into it), status alone.
      const payload = randomBytes(512);
      const both = new Uint8Array(16 + 512);
      both.set(header(T.OUT, 40n));
      both.set(payload, 16);
      const wStatus = mq.alloc(1);
      mq.addChain([
        { addr: mq.alloc(both.length, both), len: both.length },
        { addr: wStatus, len: 1, write: true },
      ]);
      // Discard: header and one segment in one buffer.
      const disc = new Uint8Array(32);
      disc.set(header(T.DISCARD, 0n));
      disc.set(segments([{ sector: 2048n, num: 8 }]), 16);
      const dStatus = mq.alloc(1);
      mq.addChain([
        { addr: mq.alloc(32, disc), len: 32 },
        { addr: dStatus, len: 1, write: true },
      ]);
      await run(h, dev);
      const got = h.memory.read(GuestAddress.of(data), 1025);
      const onDisk = fs.readFileSync(file);
      expect(Buffer.compare(got.subarray(0, 1024), onDisk.subarray(16 * 512, 16 * 512 + 1024))).to.equal(0);
      expect([
        got[1024],
        h.memory.readU8(GuestAddress.of(wStatus)),
        h.memory.readU8(GuestAddress.of(dStatus)),
      ]).to.deep.equal([OK, OK, OK]);
      expect(d.mq.readUsed().sort((x, y) => x.id - y.id)).to.deep.equal([
        { id: head, len: 1025 },
        { id: head + 3, len: 1 },
        { id: head + 5, len: 1 },
      ]);
      expect(Buffer.compare(onDisk.subarray(40 * 512, 41 * 512), payload)).to.equal(0);
      expect(onDisk.subarray(2048 * 512, 2056 * 512).every((v) => v === 0)).to.equal(true);
      await dev.destroy();
    });

    it('discard punches holes in the host file; write-zeroes zeroes with and without unmap', async () => {
      const dev = make(RawFileDisk.open({ path: file, readOnly: false }));
      const h = activateBlk(dev, events);
      const d = h.drivers[0];
      const before = fs.statSync(file).blocks;
      const disc = d.request(T.DISCARD, 0n, {
        out: segments([
          { sector: 2048n, num: 2048 },
          { sector: 6144n, num: 2048 },
        ]),
      });
      const wz = d.request(T.WRITE_ZEROES, 0n, {
        out: segments([
          { sector: 1n, num: 3 },
          { sector: 64n, num: 64, flags: 1 },
        ]),
      });
      await run(h, dev);
      expect([d.status(disc), d.status(wz)]).to.deep.equal([OK, OK]);
      await dev.destroy();
      expect(fs.statSync(file).blocks).to.be.at.most(before - (2 * MiB) / 512 + 64);
      const now = fs.readFileSync(file);
      expect(now.subarray(MiB, 2 * MiB).every((v) => v === 0)).to.equal(true);
      expect(now.subarray(512, 4 * 512).every((v) => v === 0)).to.equal(true);
      expect(now.subarray(64 * 512, 128 * 512).every((v) => v === 0)).to.equal(true);
      expect(now.subarray(0, 512).some((v) => v !== 0)).to.equal(true);
    });
  });

  describe('requests on a mock disk', () => {
    let disk: MockDiskBackend;
    let dev: VirtioBlk;
    let h: ActivatedBlk;
    beforeEach(() => {
      disk = new MockDiskBackend(MiB);
      dev = make(disk);
      h = activateBlk(dev, events);
    });

    it('flush reaches the disk; GET_ID returns the serial (20 bytes, or a prefix)', async () => {
      const d = h.drivers[0];
      const f = d.request(T.FLUSH, 0n);
      const id = d.request(T.GET_ID, 0n, { inLen: 20 });
      const short = d.request(T.GET_ID, 0n, { inLen: 6 });
      await run(h, dev);
      expect(d.status(f)).to.equal(OK);
      expect(disk.ops.flush).to.equal(1);
      expect(Buffer.from(d.data(id)).toString('latin1')).to.equal('SERIAL-0123456789-AB');
      expect(Buffer.from(d.data(short)).toString('latin1')).to.equal('SERIAL');
      const lens = new Map(d.mq.readUsed().map((u) => [u.id, u.len]));
      expect([f, id, short].map((r) => lens.get(r.head))).to.deep.equal([1, 21, 7]);
    });

    it('buffers across two memory regions, and above 2^53, read and write the same bytes as any others', async () => {
      // Low RAM in two adjacent regions (the queue and its buffers in the first), one page at 2^60.
      const HIGH = HIGH_PAGE;
      const memory = memoryWithHighPage(0x180000n, 0x200000n);
      disk.data.set(randomBytes(disk.data.length));
      const h2 = activateBlk(dev, events, { memory, queues: 1 });
      const mq = h2.drivers[0]!.mq;
      const at = (a: bigint) => GuestAddress.of(a);
      const hdr = (type: number, sector: bigint, a: bigint) => (memory.write(at(a), header(type, sector)), a);
      // A read whose 8 KiB data buffer crosses the boundary at 0x180000; its status byte in the first region.
      mq.addChain([
        { addr: hdr(T.IN, 8n, 0x170000n), len: 16 },
        { addr: 0x17f000n, len: 8192, write: true },
        { addr: 0x170100n, len: 1, write: true },
      ]);
      // A write whose data (4 KiB) sits at 2^60 and whose status byte follows it there: no flat view.
      const out = randomBytes(4096);
      memory.write(at(HIGH), out);
      mq.addChain([
        { addr: hdr(T.OUT, 64n, 0x170200n), len: 16 },
        { addr: HIGH, len: 4096 },
        { addr: HIGH + 0x1000n - 1n, len: 1, write: true },
      ]);
      h2.kick(0);
      await dev.idle();
      expect(memory.readU8(at(0x170100n)), 'read status').to.equal(OK);
      expect(Buffer.compare(memory.read(at(0x17f000n), 8192), disk.data.subarray(4096, 4096 + 8192))).to.equal(0);
      expect(memory.readU8(at(HIGH + 0xfffn)), 'write status').to.equal(OK);
      expect(Buffer.compare(disk.data.subarray(64 * 512, 64 * 512 + 4096), out)).to.equal(0);
      expect(h2.resets).to.deep.equal([]);
    });

    it('a short serial is zero padded', async () => {
      const dev2 = make(new MockDiskBackend(MiB), { serial: 'abc' });
      const h2 = activateBlk(dev2, events);
      const r = h2.drivers[0].request(T.GET_ID, 0n, { inLen: 20 });
      await run(h2, dev2);
      expect([...h2.drivers[0].data(r)]).to.deep.equal([97, 98, 99, ...new Array(17).fill(0)]);
    });

    it('refuses ranges past the capacity, including sectors near 2^64 (no overflow)', async () => {
      const d = h.drivers[0];
      const last = d.read(BigInt(MiB / 512) - 1n, 512);
      const past = d.read(BigInt(MiB / 512) - 1n, 1024);
      const huge = d.read((1n << 64n) - 1n, 512);
      const wrap = d.write(1n << 55n, new Uint8Array(512));
      await run(h, dev);
      expect([d.status(last), d.status(past), d.status(huge), d.status(wrap)]).to.deep.equal([OK, IOERR, IOERR, IOERR]);
      expect(disk.ops.read).to.equal(1);
      expect(disk.ops.write).to.equal(0);
      expect(dev.metrics.total().ioErrors).to.equal(3);
    });

    it('refuses data lengths that are not whole sectors', async () => {
      const d = h.drivers[0];
      const r = d.read(0n, 511);
      const w = d.write(0n, new Uint8Array(700));
      await run(h, dev);
      expect([d.status(r), d.status(w)]).to.deep.equal([IOERR, IOERR]);
      expect(disk.ops.read + disk.ops.write).to.equal(0);
    });

    it('a read-only disk refuses writes, discard and write-zeroes even when RO was not negotiated', async () => {
      const ro = new MockDiskBackend(MiB, false);
      const dev2 = make(ro, { readOnly: true });
      const h2 = activateBlk(dev2, events, {
        features: (dev2.deviceFeatures & ~VIRTIO_BLK_F_RO) | VIRTIO_BLK_F_DISCARD | VIRTIO_BLK_F_WRITE_ZEROES,
      });
      const d = h2.drivers[0];
      const w = d.write(0n, new Uint8Array(512).fill(1));
      const disc = d.request(T.DISCARD, 0n, { out: segments([{ sector: 0n, num: 1 }]) });
      const wz = d.request(T.WRITE_ZEROES, 0n, { out: segments([{ sector: 0n, num: 1 }]) });
      const r = d.read(0n, 512);
      await run(h2, dev2);
      expect([d.status(w), d.status(disc), d.status(wz), d.status(r)]).to.deep.equal([IOERR, IOERR, IOERR, OK]);
      expect(ro.ops.write + ro.ops.discard + ro.ops.writeZeroes).to.equal(0);
    });

    it('answers unsupported request types with UNSUPP', async () => {
      const d = h.drivers[0];
      const a = d.request(T.GET_LIFETIME, 0n, { inLen: 8 });
      const b = d.request(T.SECURE_ERASE, 0n, { out: segments([{ sector: 0n, num: 1 }]) });
      const c = d.request(0xdead_beef, 0n);
      await run(h, dev);
      expect([d.status(a), d.status(b), d.status(c)]).to.deep.equal([UNSUPP, UNSUPP, UNSUPP]);
      expect(dev.metrics.total().unsupported).to.equal(3);
    });

    it('short headers and wrongly shaped chains get IOERR when a status byte exists', async () => {
      const d = h.drivers[0];
      const shortHdr = d.request(T.IN, 0n, { headerLen: 8, inLen: 512 });
      const readWithOut = d.request(T.IN, 0n, { out: new Uint8Array(512), inLen: 512 });
      const writeWithIn = d.request(T.OUT, 0n, { out: new Uint8Array(512), inLen: 512 });
      await run(h, dev);
      expect([d.status(shortHdr), d.status(readWithOut), d.status(writeWithIn)]).to.deep.equal([IOERR, IOERR, IOERR]);
      expect(h.resets).to.deep.equal([]);
      expect(disk.ops.read + disk.ops.write).to.equal(0);
    });

    it('a chain without a writable status byte is dropped and the device asks for a reset', async () => {
      const d = h.drivers[0];
      const bad = d.request(T.IN, 0n, { noStatus: true });
      const after = d.read(0n, 512);
      await run(h, dev);
      expect(h.resets).to.have.length(1);
      expect(h.resets[0]).to.match(/no writable status/);
      expect(d.mq.readUsed()).to.deep.equal([]);
      expect(d.status(after)).to.equal(0xff); // never served: the device stopped
      void bad;
    });

    it('a driver breaking the ring rules (readable after writable) makes the device ask for a reset', async () => {
      const d = h.drivers[0];
      const st = d.mq.alloc(1);
      const hdr = d.mq.alloc(16);
      d.mq.addChain([
        { addr: st, len: 1, write: true },
        { addr: hdr, len: 16 },
      ]);
      await run(h, dev);
      expect(h.resets).to.have.length(1);
    });

    it('validates discard and write-zeroes segments (flags, counts, ranges, sizes)', async () => {
      const d = h.drivers[0];
      const cap = BigInt(MiB / 512);
      const cases = [
        d.request(T.DISCARD, 0n, { out: segments([{ sector: 0n, num: 8, flags: 1 }]) }), // unmap on discard
        d.request(T.WRITE_ZEROES, 0n, { out: segments([{ sector: 0n, num: 8, flags: 2 }]) }), // unknown flag
        d.request(T.DISCARD, 0n, {
          out: segments(Array.from({ length: MAX_DISCARD_SEGMENTS + 1 }, () => ({ sector: 0n, num: 1 }))),
        }),
        d.request(T.DISCARD, 0n, { out: segments([{ sector: cap - 1n, num: 2 }]) }),
        d.request(T.DISCARD, 0n, { out: segments([{ sector: (1n << 64n) - 1n, num: 0xffff_ffff }]) }),
        d.request(T.WRITE_ZEROES, 0n, { out: new Uint8Array(24) }),
        d.request(T.DISCARD, 0n),
        d.request(T.DISCARD, 0n, { out: segments([{ sector: 8n, num: 8 }]) }),
      ];
      await run(h, dev);
      expect(cases.map((c) => d.status(c))).to.deep.equal([UNSUPP, UNSUPP, IOERR, IOERR, IOERR, IOERR, IOERR, OK]);
      expect(disk.ops.discard).to.equal(1);
      expect(disk.ops.writeZeroes).to.equal(0);
    });

    it('refuses discard when the driver did not negotiate it', async () => {
      const dev2 = make(new MockDiskBackend(MiB));
      const h2 = activateBlk(dev2, events, { features: dev2.deviceFeatures & ~VIRTIO_BLK_F_DISCARD });
      const r = h2.drivers[0].request(T.DISCARD, 0n, { out: segments([{ sector: 0n, num: 1 }]) });
      await run(h2, dev2);
      expect(h2.drivers[0].status(r)).to.equal(UNSUPP);
    });

    it('a failing disk gives IOERR and the device keeps serving', async () => {
      const d = h.drivers[0];
      disk.failNext = new Error('EIO from the host');
      const r1 = d.read(0n, 512);
      await run(h, dev);
      const r2 = d.read(0n, 512);
      await run(h, dev);
      expect([d.status(r1), d.status(r2)]).to.deep.equal([IOERR, OK]);
      expect(dev.metrics.total().ioErrors).to.equal(1);
    });

    it('is write-through (flush after each write) when the driver did not negotiate FLUSH', async () => {
      const dev2 = make(disk);
      const h2 = activateBlk(dev2, events, { features: dev2.deviceFeatures & ~VIRTIO_BLK_F_FLUSH });
      h2.drivers[0].write(0n, new Uint8Array(512));
      await run(h2, dev2);
      expect(disk.ops.write).to.equal(1);
      expect(disk.ops.flush).to.equal(1);
    });

    it('respects the driver suppressing interrupts (EVENT_IDX used_event)', async () => {
      const d = h.drivers[0];
      d.mq.setUsedEvent(5); // interrupt me only once used.idx passes 5
      d.read(0n, 512);
      await run(h, dev);
      expect(h.interrupts).to.deep.equal([]);
      for (let i = 0; i < 5; i++) d.read(0n, 512);
      await run(h, dev);
      expect(h.interrupts).to.deep.equal([0]);
    });

    it('a batch the disk answers at once goes back before the next loop turn, with one interrupt', async () => {
      const d = h.drivers[0];
      for (let i = 0; i < 4; i++) d.read(BigInt(i), 512);
      h.kick();
      for (let i = 0; i < 20; i++) await Promise.resolve(); // microtasks only: no setImmediate ran
      expect(d.mq.usedIdx).to.equal(4);
      expect(h.interrupts).to.deep.equal([0]);
    });

    it('while a slow request is in flight, finished ones go back on the next loop turn (not held for it)', async () => {
      let open!: () => void;
      const gate = new Promise<void>((res) => {
        open = res;
      });
      const slow: DiskBackend = Object.assign(Object.create(disk) as DiskBackend, {
        read: async (offset: bigint, into: Uint8Array[]) => {
          if (offset === 0n) await gate;
          return disk.read(offset, into);
        },
      });
      const dev2 = make(slow);
      const h2 = activateBlk(dev2, events);
      const d = h2.drivers[0];
      const r0 = d.read(0n, 512);
      d.read(8n, 512);
      d.read(16n, 512);
      h2.kick();
      for (let i = 0; i < 20; i++) await Promise.resolve();
      expect(d.mq.usedIdx, 'the fast two wait for the deferred flush').to.equal(0);
      await new Promise((res) => setImmediate(res));
      expect(d.mq.usedIdx).to.equal(2);
      expect(h2.interrupts).to.deep.equal([0]);
      d.mq.setUsedEvent(2); // the driver consumed both and asks for the next one
      open();
      await dev2.idle();
      expect(d.mq.usedIdx).to.equal(3);
      expect(d.status(r0)).to.equal(OK);
      expect(h2.interrupts).to.deep.equal([0, 0]);
    });

    it('after reset, completions of requests in flight do not touch the used ring', async () => {
      const d = h.drivers[0];
      const r = d.read(0n, 512);
      h.kick();
      dev.reset();
      await new Promise((res) => setImmediate(res));
      await new Promise((res) => setImmediate(res));
      expect(d.mq.usedIdx).to.equal(0);
      expect(d.status(r)).to.equal(0xff);
      expect(events.watched).to.equal(0);
    });
  });

  describe('multiqueue', () => {
    it('serves each queue from its own eventfd with per-queue metrics', async () => {
      const disk = new MockDiskBackend(MiB);
      const dev = make(disk, { numQueues: 3 });
      const h = activateBlk(dev, events);
      expect(events.watched).to.equal(3);
      const r2 = h.drivers[2].write(0n, new Uint8Array(1024).fill(7));
      await run(h, dev, 2);
      const r1 = h.drivers[1].read(0n, 1024);
      await run(h, dev, 1);
      expect([h.drivers[2].status(r2), h.drivers[1].status(r1)]).to.deep.equal([OK, OK]);
      expect(h.drivers[1].data(r1).every((v) => v === 7)).to.equal(true);
      expect(h.interrupts).to.deep.equal([2, 1]);
      const m = dev.metrics.snapshot();
      expect(m.queues.map((q) => q.requests)).to.deep.equal([0, 1, 1]);
      expect(m.queues[2].writeBytes).to.equal(1024);
      expect(m.total.readBytes).to.equal(1024);
    });
  });

  describe('rate limiting', () => {
    let clock: sinon.SinonFakeTimers;
    beforeEach(() => {
      clock = sinon.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance', 'Date'] });
    });
    afterEach(() => clock.restore());

    it('defers requests over budget (queue paused, a timer resumes it) and never drops one', async () => {
      const disk = new MockDiskBackend(MiB);
      const dev = make(disk, { rateLimiter: { ops: { size: 2, refillTimeMs: 1000 } } });
      const h = activateBlk(dev, events);
      const d = h.drivers[0];
      const reqs = Array.from({ length: 5 }, (_, i) => d.read(BigInt(i), 512));
      h.kick();
      await flushImmediates();
      expect(reqs.map((r) => d.status(r))).to.deep.equal([OK, OK, 0xff, 0xff, 0xff]);
      expect(dev.metrics.total().throttled).to.be.at.least(1);
      h.kick(); // a notification while throttled does not bypass the limiter
      await flushImmediates();
      expect(d.status(reqs[2])).to.equal(0xff);
      clock.tick(500);
      await flushImmediates();
      expect(reqs.map((r) => d.status(r))).to.deep.equal([OK, OK, OK, 0xff, 0xff]);
      clock.tick(1000);
      await flushImmediates();
      expect(reqs.map((r) => d.status(r))).to.deep.equal([OK, OK, OK, OK, OK]);
      expect(d.mq.readUsed().map((u) => u.id)).to.deep.equal(reqs.map((r) => r.head));
    });

    it('limits bandwidth in bytes', async () => {
      const dev = make(new MockDiskBackend(MiB), { rateLimiter: { bandwidth: { size: 4096, refillTimeMs: 100 } } });
      const h = activateBlk(dev, events);
      const d = h.drivers[0];
      const a = d.read(0n, 4096),
        b = d.read(0n, 2048);
      h.kick();
      await flushImmediates();
      expect([d.status(a), d.status(b)]).to.deep.equal([OK, 0xff]);
      clock.tick(50);
      await flushImmediates();
      expect(d.status(b)).to.equal(OK);
    });
  });
});

async function flushImmediates(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((res) => setImmediate(res));
}
