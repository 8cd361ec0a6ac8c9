import { DEFAULT_LOG_LIMIT } from '../../core/ratelimit/log-limiter.js';
import { expect } from 'chai';
import { warningsLogger } from '../../core/testing/warnings-logger.js';
import { GuestAddress } from '../../core/address.js';
import { createAnonymousMmapMemory } from '../../core/memory/backends/anonymous-mmap.js';
import { memoryWithRom } from '../virtio/testing.js';
import {
  STAT_ENTRY_SIZE,
  VIRTIO_BALLOON_F_DEFLATE_ON_OOM,
  VIRTIO_BALLOON_F_REPORTING,
  VIRTIO_BALLOON_F_STATS_VQ,
} from './constants.js';
import { VirtioBalloon } from './device.js';
import { VirtioBalloonError } from './errors.js';
import { balloonBench, pfnBytes, touchPage } from './testing.js';
import { VIRTIO_F_VERSION_1 } from '../../core/virtio/virtio.js';

const MiB = 1 << 20;
const page = (memory: { read(a: GuestAddress, n: number): Uint8Array }, pfn: number) =>
  memory.read(GuestAddress.of(BigInt(pfn) * 4096n), 4096);
const cfgU32 = (dev: VirtioBalloon, off: number) => {
  const d = new Uint8Array(4);
  dev.readConfig(off, d);
  return new DataView(d.buffer).getUint32(0, true);
};

describe('virtio-balloon device', () => {
  it('offers stats and free page reporting by default (4 queues), deflate-on-oom when asked', () => {
    const d = new VirtioBalloon({ id: 'b', memorySize: 64n * BigInt(MiB) });
    expect(d.deviceType).to.equal(5);
    expect(d.queueMaxSizes).to.have.length(4);
    expect(d.deviceFeatures & VIRTIO_BALLOON_F_STATS_VQ).to.not.equal(0n);
    expect(d.deviceFeatures & VIRTIO_BALLOON_F_REPORTING).to.not.equal(0n);
    expect(d.deviceFeatures & VIRTIO_BALLOON_F_DEFLATE_ON_OOM).to.equal(0n);
    const bare = new VirtioBalloon({
      id: 'b',
      memorySize: 1n << 26n,
      stats: false,
      freePageReporting: false,
      deflateOnOom: true,
    });
    expect(bare.queueMaxSizes).to.have.length(2);
    expect(bare.deviceFeatures & VIRTIO_BALLOON_F_DEFLATE_ON_OOM).to.not.equal(0n);
  });

  it('the target is num_pages in config space; setTarget tells the driver; the driver writes actual', () => {
    const b = balloonBench({ target: 2n * BigInt(MiB) });
    expect(cfgU32(b.dev, 0)).to.equal(512);
    b.dev.setTarget(3n * BigInt(MiB) + 100n);
    expect(cfgU32(b.dev, 0)).to.equal(768);
    expect(b.signals).to.deep.equal([-1]);
    b.dev.writeConfig(4, pfnBytes([700]));
    b.dev.writeConfig(0, pfnBytes([1])); // num_pages is the device's: ignored
    expect(cfgU32(b.dev, 4)).to.equal(700);
    expect(cfgU32(b.dev, 0)).to.equal(768);
    expect(b.dev.status()).to.deep.include({ targetBytes: 768n * 4096n, actualBytes: 700n * 4096n });
    expect(() => b.dev.setTarget(5n * BigInt(MiB))).to.throw(VirtioBalloonError, /outside 0\.\.4194304/);
    expect(() => b.dev.setTarget(-1n)).to.throw(VirtioBalloonError);
  });

  it('inflate: the memory behind each PFN goes back to the host (reads zeros), refused PFNs are counted', () => {
    const b = balloonBench();
    for (const p of [300, 301, 302, 500]) touchPage(b.memory, p, 0x77);
    const q = b.queues[0];
    const pfns = [302, 300, 301, 500, 300, 0xffff_ff00]; // out of order, a repeat, one outside RAM
    q.addChain([{ addr: q.alloc(24, pfnBytes(pfns)), len: 24 }]);
    b.kick();
    expect(q.readUsed()).to.deep.equal([{ id: 0, len: 0 }]);
    for (const p of [300, 301, 302, 500])
      expect(
        page(b.memory, p).every((x) => x === 0),
        `pfn ${p}`,
      ).to.equal(true);
    expect(page(b.memory, 303).every((x) => x === 0)).to.equal(true); // untouched stays as it was
    expect(b.dev.metrics).to.deep.include({ inflatedPages: 4, refusedPages: 1, releasedBytes: 4 * 4096 });
    expect(b.signals).to.deep.equal([0]);
    expect(b.resets).to.deep.equal([]);
  });

  it('inflate on real anonymous memory: madvise(DONTNEED) drops the pages (they read back as zeros)', () => {
    const memory = createAnonymousMmapMemory({
      backend: 'anonymous',
      regions: [{ start: 0n, size: 8n * BigInt(MiB) }],
    });
    try {
      const b = balloonBench({ memory });
      for (let p = 1024; p < 1024 + 256; p++) touchPage(memory, p, 0x5a);
      const q = b.queues[0];
      const pfns = Array.from({ length: 256 }, (_, i) => 1024 + i);
      q.addChain([{ addr: q.alloc(1024, pfnBytes(pfns)), len: 1024 }]);
      b.kick();
      expect(b.dev.metrics.inflatedPages).to.equal(256);
      const all = memory.read(GuestAddress.of(1024n * 4096n), 256 * 4096);
      expect(all.every((x) => x === 0)).to.equal(true);
      expect(page(memory, 1023).every((x) => x === 0)).to.equal(true);
    } finally {
      memory.close();
    }
  });

  it('read-only memory (a ROM) is never released', () => {
    const { mem, rom } = memoryWithRom();
    const b = balloonBench({ memory: mem });
    const q = b.queues[0];
    const romPfn = Number(rom / 4096n);
    q.addChain([{ addr: q.alloc(4, pfnBytes([romPfn])), len: 4 }]);
    b.kick();
    expect(page(mem, romPfn)[0]).to.equal(0x5a);
    expect(b.dev.metrics).to.deep.include({ inflatedPages: 0, refusedPages: 1 });
  });

  it('deflate counts the pages the guest takes back; malformed chains are returned and counted, not trusted', () => {
    const b = balloonBench();
    const q = b.queues[1];
    q.addChain([{ addr: q.alloc(8, pfnBytes([300, 301])), len: 8 }]);
    q.addChain([{ addr: q.alloc(6), len: 6 }]); // one and a half PFNs
    q.addChain([{ addr: q.alloc(8), len: 8, write: true }]); // wrong direction
    b.kick();
    expect(q.readUsed().map((u) => u.len)).to.deep.equal([0, 0, 0]);
    expect(b.dev.metrics.deflatedPages).to.equal(3); // 2 + the whole PFN of the partial chain
    expect(b.dev.metrics.invalidRequests).to.equal(2);
    expect(b.resets).to.deep.equal([]);
  });

  it('a driver sending bad requests over and over is logged a burst of times, not once per request', () => {
    const { logger, warnings } = warningsLogger();
    const b = balloonBench({ logger });
    const q = b.queues[1];
    for (let i = 0; i < 60; i++) {
      q.addChain([{ addr: q.alloc(6), len: 6 }]); // one and a half PFNs
      b.kick();
    }
    expect(b.dev.metrics.invalidRequests).to.equal(60);
    expect(warnings.length).to.be.at.least(1).and.at.most(DEFAULT_LOG_LIMIT.burst);
    expect(warnings.every((w) => w.startsWith('balloon: bad request from the driver ignored'))).to.equal(true);
  });

  it('a buffer outside guest memory stops that queue with DEVICE_NEEDS_RESET', () => {
    const b = balloonBench();
    b.queues[0].addChain([{ addr: 0x7fff_f000n, len: 16 }]);
    b.kick();
    expect(b.resets).to.have.length(1);
    expect(b.resets[0]).to.match(/^inflate queue: /);
  });

  it('statistics: the device keeps the buffer, gives it back when it wants fresh numbers, reads them', async () => {
    const b = balloonBench();
    const q = b.queues[2];
    const stats = (free: number) => {
      const buf = new Uint8Array(3 * STAT_ENTRY_SIZE);
      const dv = new DataView(buf.buffer);
      [
        [4, free],
        [5, 256 * MiB],
        [99, 7], // an unknown tag: skipped
      ].forEach(([tag, v], i) => {
        dv.setUint16(i * STAT_ENTRY_SIZE, tag, true);
        dv.setBigUint64(i * STAT_ENTRY_SIZE + 2, BigInt(v), true);
      });
      return buf;
    };
    const buf = q.alloc(30);
    b.memory.write(GuestAddress.of(buf), stats(100 * MiB));
    q.addChain([{ addr: buf, len: 30 }]);
    b.kick();
    expect(q.readUsed()).to.deep.equal([]); // held
    expect(b.dev.status().stats).to.deep.equal({ freeMemory: 100 * MiB, totalMemory: 256 * MiB });
    const fresh = b.dev.requestStats();
    expect(q.readUsed()).to.deep.equal([{ id: 0, len: 0 }]); // given back for a refill
    b.memory.write(GuestAddress.of(buf), stats(90 * MiB));
    q.addChain([{ addr: buf, len: 30 }]);
    b.kick();
    expect(await fresh).to.deep.equal({ freeMemory: 90 * MiB, totalMemory: 256 * MiB });
    expect(b.dev.metrics.statsUpdates).to.equal(2);
  });

  it('without a negotiated stats queue, requestStats is refused and free page reporting is queue 2', async () => {
    const b = balloonBench({ features: VIRTIO_F_VERSION_1 | VIRTIO_BALLOON_F_REPORTING });
    let err: Error | undefined;
    await b.dev.requestStats().catch((e: Error) => (err = e));
    expect(err?.message).to.match(/no statistics queue/);
    touchPage(b.memory, 600, 1);
    const q = b.queues[2];
    q.addChain([{ addr: 600n * 4096n, len: 4096, write: true }]);
    b.kick();
    expect(q.readUsed()).to.deep.equal([{ id: 0, len: 0 }]);
    expect(page(b.memory, 600)[0]).to.equal(0);
    expect(b.dev.metrics.reportedPages).to.equal(1);
  });

  it('free page reporting releases whole pages of the reported buffers only', () => {
    const b = balloonBench();
    for (const p of [700, 701, 702]) touchPage(b.memory, p, 9);
    const q = b.queues[3];
    // 700.5 .. 702.5 pages: only page 701 lies wholly inside
    q.addChain([{ addr: 700n * 4096n + 2048n, len: 2 * 4096, write: true }]);
    b.kick();
    expect(page(b.memory, 700)[2047]).to.equal(9);
    expect(page(b.memory, 701).every((x) => x === 0)).to.equal(true);
    expect(page(b.memory, 702)[0]).to.equal(9);
    expect(b.dev.metrics.reportedPages).to.equal(1);
  });

  it('a reset stops the queues and clears actual; pending stats requests are rejected', async () => {
    const b = balloonBench();
    const q = b.queues[2];
    q.addChain([{ addr: q.alloc(10), len: 10 }]);
    b.kick();
    b.dev.writeConfig(4, pfnBytes([5]));
    const pending = b.dev.requestStats();
    b.dev.reset();
    let err: Error | undefined;
    await pending.catch((e: Error) => (err = e));
    expect(err?.message).to.match(/reset/);
    expect(cfgU32(b.dev, 4)).to.equal(0);
  });
});
