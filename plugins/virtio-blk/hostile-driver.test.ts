import { expect } from 'chai';
import { warningsLogger } from '../../core/testing/warnings-logger.js';
import { GuestAddress } from '../../core/address.js';
import { DEFAULT_LOG_LIMIT } from '../../core/ratelimit/log-limiter.js';
import { MockDiskBackend } from '../../core/testing/mock-disk.js';
import { testGuestMemory } from '../../core/testing/test-memory.js';
import { FakeEventSystem, memoryWithRom } from '../virtio/testing.js';
import { BlkRequestType, BlkStatus, MAX_INFLIGHT_BYTES, MAX_IO_PIECE } from './constants.js';
import { VirtioBlk } from './device.js';
import { activateBlk, header } from './testing.js';

const MiB = 1 << 20;

/** A disk whose reads and writes wait until release(); it records what was at the disk at once. */
class HeldDisk extends MockDiskBackend {
  private waiting: (() => void)[] = [];
  inFlight = 0;
  inFlightBytes = 0;
  maxInFlight = 0;
  maxInFlightBytes = 0;
  largestCall = 0;

  private async hold(bytes: number): Promise<void> {
    this.inFlight++;
    this.inFlightBytes += bytes;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    this.maxInFlightBytes = Math.max(this.maxInFlightBytes, this.inFlightBytes);
    this.largestCall = Math.max(this.largestCall, bytes);
    await new Promise<void>((res) => this.waiting.push(res));
    this.inFlight--;
    this.inFlightBytes -= bytes;
  }
  override async read(offset: bigint, into: Uint8Array[]): Promise<void> {
    await this.hold(into.reduce((s, b) => s + b.length, 0));
    return super.read(offset, into);
  }
  override async write(offset: bigint, from: Uint8Array[]): Promise<void> {
    await this.hold(from.reduce((s, b) => s + b.length, 0));
    return super.write(offset, from);
  }
  /** Lets everything waiting go on and returns how many there were. */
  release(): number {
    const w = this.waiting;
    this.waiting = [];
    for (const r of w) r();
    return w.length;
  }
}

/** Runs the fake loop and lets the disk go on until the device is idle. */
async function drain(disk: HeldDisk, events: FakeEventSystem, dev: VirtioBlk): Promise<void> {
  let idle = false;
  void dev.idle().then(() => {
    idle = true;
  });
  while (!idle) {
    await new Promise((r) => setImmediate(r));
    events.run();
    disk.release();
  }
}

describe('plugins/virtio-blk: hostile drivers', () => {
  it('a driver re-posting one head gets the queue refused at queue-size chains in use', async () => {
    const events = new FakeEventSystem();
    const disk = new HeldDisk(MiB);
    const dev = new VirtioBlk({ id: 'vda', disk, queueSize: 16 }, events.loop);
    const h = activateBlk(dev, events, { queueSize: 16 });
    const d = h.drivers[0];
    const first = d.read(0n, 512);
    h.kick();
    for (let i = 0; i < 100; i++) {
      d.mq.publish(first.head);
      h.kick();
    }
    expect(disk.inFlight).to.equal(16);
    expect(h.resets).to.have.length(1);
    expect(h.resets[0]).to.match(/16 chains are in use \(the queue size\)/);
    disk.release();
    await dev.idle();
  });

  it('a large request reaches the disk in pieces of at most MAX_IO_PIECE, with the right data', async () => {
    const events = new FakeEventSystem();
    const disk = new HeldDisk(8 * MiB);
    for (let i = 0; i < disk.data.length; i++) disk.data[i] = (i * 7 + (i >> 12)) & 0xff;
    const dev = new VirtioBlk({ id: 'vda', disk }, events.loop);
    const memory = testGuestMemory(16 * MiB);
    const h = activateBlk(dev, events, { memory });
    const d = h.drivers[0];
    const len = 3 * MAX_IO_PIECE + 4096;
    const r = d.read(1n, len, { split: true }); // two data buffers: qcow2 would gather them into one host buffer
    h.kick();
    await drain(disk, events, dev);
    expect(d.status(r)).to.equal(0);
    expect(disk.largestCall).to.equal(MAX_IO_PIECE);
    expect(disk.ops.read).to.equal(4);
    expect(Buffer.from(d.data(r)).equals(Buffer.from(disk.data.subarray(512, 512 + len)))).to.equal(true);
    const src = new Uint8Array(2 * MAX_IO_PIECE + 512).map((_, i) => (i * 13) & 0xff);
    const w = d.write(4n, src, { split: true });
    h.kick();
    await drain(disk, events, dev);
    expect(d.status(w)).to.equal(0);
    expect(Buffer.from(disk.data.subarray(2048, 2048 + src.length)).equals(Buffer.from(src))).to.equal(true);
  });

  it('a reset stops a large read between pieces: no later piece reaches the disk or guest memory', async () => {
    const events = new FakeEventSystem();
    const disk = new HeldDisk(8 * MiB);
    disk.data.fill(0x5a);
    const dev = new VirtioBlk({ id: 'vda', disk }, events.loop);
    const memory = testGuestMemory(16 * MiB);
    const h = activateBlk(dev, events, { memory });
    const d = h.drivers[0];
    const r = d.read(0n, 3 * MAX_IO_PIECE);
    h.kick();
    expect(disk.inFlight).to.equal(1); // the first piece is at the disk
    dev.reset(); // the driver wrote 0 to Status (the transport stops the device)
    for (let i = 0; i < 10; i++) {
      await new Promise((res) => setImmediate(res));
      events.run();
      disk.release();
    }
    // the piece at the disk at the reset finishes; none starts after it (the driver may reuse those pages)
    expect(disk.ops.read).to.equal(1);
    const after = memory.read(GuestAddress.of(r.data! + BigInt(MAX_IO_PIECE)), 2 * MAX_IO_PIECE);
    expect(after.every((b) => b === 0xee)).to.equal(true); // what the test driver left there
    expect(d.mq.readUsed()).to.deep.equal([]);
  });

  it('after a reset, idle() waits for the piece still at the disk (pause and snapshots see no late write)', async () => {
    const events = new FakeEventSystem();
    const disk = new HeldDisk(MiB);
    const dev = new VirtioBlk({ id: 'vda', disk }, events.loop);
    const h = activateBlk(dev, events, { memory: testGuestMemory(4 * MiB) });
    h.drivers[0].read(0n, 4096);
    h.kick();
    expect(disk.inFlight).to.equal(1);
    dev.reset();
    let idle = false;
    void dev.idle().then(() => {
      idle = true;
    });
    await new Promise((res) => setImmediate(res));
    expect(idle, 'idle while a read still writes guest memory').to.equal(false);
    expect(dev.quiet).to.equal(false);
    disk.release();
    await dev.idle();
    expect(disk.inFlight).to.equal(0);
    expect(dev.quiet).to.equal(true);
  });

  it('reads in flight stop at MAX_INFLIGHT_BYTES and the rest start as completions make room', async () => {
    const events = new FakeEventSystem();
    const disk = new HeldDisk(2 * MAX_IO_PIECE);
    const dev = new VirtioBlk({ id: 'vda', disk, queueSize: 256 }, events.loop);
    const memory = testGuestMemory(8 * MiB);
    const h = activateBlk(dev, events, { memory, queueSize: 256 });
    const mq = h.drivers[0].mq;
    // Every request reads 1 MiB into the same guest buffer (a driver may do that).
    const data = mq.alloc(MAX_IO_PIECE);
    const hdr = mq.alloc(16, header(BlkRequestType.IN, 0n));
    const count = MAX_INFLIGHT_BYTES / MAX_IO_PIECE + 20;
    const status = mq.alloc(count);
    for (let i = 0; i < count; i++) {
      mq.addIndirectChain([
        { addr: hdr, len: 16 },
        { addr: data, len: MAX_IO_PIECE, write: true },
        { addr: status + BigInt(i), len: 1, write: true },
      ]);
    }
    h.kick();
    expect(disk.inFlightBytes).to.equal(MAX_INFLIGHT_BYTES);
    await drain(disk, events, dev);
    expect(disk.maxInFlightBytes).to.equal(MAX_INFLIGHT_BYTES);
    expect(disk.ops.read).to.equal(count);
    expect(mq.readUsed()).to.have.length(count);
    expect([...memory.read(GuestAddress.of(status), count)].every((s) => s === 0)).to.equal(true);
    expect(h.resets).to.deep.equal([]);
  });

  it('a read into read-only guest memory fails with IOERR and leaves that memory untouched', async () => {
    const events = new FakeEventSystem();
    const disk = new MockDiskBackend(MiB);
    disk.data.fill(0x11);
    const dev = new VirtioBlk({ id: 'vda', disk }, events.loop);
    const { mem, rom } = memoryWithRom();
    const h = activateBlk(dev, events, { memory: mem, queues: 1 });
    const mq = h.drivers[0].mq;
    const status = mq.alloc(1);
    mq.addChain([
      { addr: mq.alloc(16, header(BlkRequestType.IN, 0n)), len: 16 },
      { addr: rom, len: 4096, write: true },
      { addr: status, len: 1, write: true },
    ]);
    h.kick();
    await dev.idle();
    expect(mem.readU8(GuestAddress.of(status))).to.equal(BlkStatus.IOERR);
    expect([...mem.read(GuestAddress.of(rom), 4096)].every((b) => b === 0x5a)).to.equal(true);
    expect(disk.ops.read).to.equal(0);
    expect(h.resets).to.deep.equal([]);
  });

  it('a request failing over and over is logged a few times, not once per request', async () => {
    const events = new FakeEventSystem();
    const disk = new MockDiskBackend(MiB);
    const { logger, warnings } = warningsLogger();
    // time stands still: no log budget comes back
    const clock = { now: () => 0, setTimer: () => ({ dispose: () => {} }) };
    const dev = new VirtioBlk({ id: 'vda', disk, clock }, events.loop, logger);
    const h = activateBlk(dev, events);
    const d = h.drivers[0];
    for (let i = 0; i < 50; i++) {
      disk.failNext = new Error('EIO');
      const r = d.read(0n, 512);
      h.kick();
      await dev.idle();
      expect(d.status(r)).to.equal(BlkStatus.IOERR);
    }
    expect(dev.metrics.total().ioErrors).to.equal(50);
    expect(warnings).to.have.length(DEFAULT_LOG_LIMIT.burst);
    expect(warnings.every((w) => w === 'disk I/O failed; guest gets IOERR')).to.equal(true);
  });
});
