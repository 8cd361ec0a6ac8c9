import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { StateError } from '../../core/state/errors.js';
import { restoreSnapshot, takeSnapshot } from '../../core/state/persist.js';
import { MockDiskBackend } from '../../core/testing/mock-disk.js';
import { hostileStateProblems, withData } from '../../core/testing/state.js';
import type { VirtioMmioTransport } from '../virtio-mmio/device.js';
import { mmioTestHost } from '../virtio-mmio/testing.js';
import { MockSplitQueue } from '../virtio/testing.js';
import { BlkStatus } from './constants.js';
import { VirtioBlk } from './device.js';
import { BlkTestDriver } from './testing.js';

const MEM = 4 << 20;

function setup(disk: MockDiskBackend) {
  const t = mmioTestHost({ memorySize: MEM, ioeventfd: false });
  const dev = new VirtioBlk({ id: 'vda', disk, queueSize: 64 }, t.events.loop);
  t.host.attachVirtioDevice(dev);
  const transport = t.host.transports[0] as VirtioMmioTransport;
  const drv = t.driverAt(t.bus.registrations('mmio')[0].range.start.value);
  const q = new MockSplitQueue(t.memory, 64, 0x10000n);
  return { ...t, dev, transport, drv, q, blk: new BlkTestDriver(q) };
}

describe('virtio-blk: state', () => {
  it('round-trips through the transport; a request published before the save is served after restore', async () => {
    const diskA = new MockDiskBackend(1 << 20);
    const a = setup(diskA);
    a.drv.init([a.q]);
    const data = randomBytes(1024);
    const w = a.blk.write(8n, data);
    a.drv.notify(0);
    a.events.run();
    await a.dev.idle();
    expect(a.blk.status(w)).to.equal(BlkStatus.OK);
    const r = a.blk.read(8n, 1024); // published, not notified

    // Another VMM: the same disk contents and guest memory (copied), the same config.
    const b = setup(new MockDiskBackend(diskA.data.slice()));
    const start = a.memory.regions[0].range.start;
    b.memory.write(start, a.memory.read(start, MEM));
    const first = takeSnapshot(a.transport);
    restoreSnapshot(b.transport, JSON.parse(JSON.stringify(first)));
    expect((first.data as { device: unknown }).device).to.deep.equal({
      id: 'vda',
      version: 1,
      data: { capacity: '2048', readOnly: false, blockSize: 512, numQueues: 1, queueSize: 64 },
    });
    // Re-activation serves what the driver had published (as at DRIVER_OK): no notify needed.
    await b.dev.idle();
    expect(b.blk.status(r)).to.equal(BlkStatus.OK);
    expect(Buffer.compare(b.blk.data(r), data)).to.equal(0);
    // Both sides served the same chains now: their saved states agree.
    a.drv.notify(0);
    a.events.run();
    await a.dev.idle();
    expect(takeSnapshot(b.transport)).to.deep.equal(takeSnapshot(a.transport));
  });

  it('refuses to save while a request is in flight, and saves once it completed', async () => {
    const a = setup(new MockDiskBackend(1 << 20));
    a.drv.init([a.q]);
    a.blk.write(0n, randomBytes(512));
    a.drv.notify(0);
    a.events.run();
    expect(() => takeSnapshot(a.transport)).to.throw(
      StateError,
      /^vda: cannot save its virtio-blk state: queue 0 has requests in flight/,
    );
    await a.dev.idle();
    expect(() => takeSnapshot(a.transport)).to.not.throw();
  });

  it('refuses a state saved with another disk size or shape, and hostile ones', () => {
    const a = setup(new MockDiskBackend(1 << 20));
    const saved = takeSnapshot(a.transport);
    const small = setup(new MockDiskBackend(1 << 19));
    expect(() => restoreSnapshot(small.transport, saved)).to.throw(
      StateError,
      /vda: saved virtio-blk state does not fit: it was saved with capacity 2048, this device has 1024/,
    );
    const blk = takeSnapshot(a.dev);
    expect(
      hostileStateProblems(a.dev, [
        withData(blk, (d) => ({ ...d, capacity: '-1' })),
        withData(blk, (d) => ({ ...d, capacity: 2048 })),
        withData(blk, (d) => ({ ...d, readOnly: true })),
        withData(blk, (d) => ({ ...d, numQueues: 2 })),
        withData(blk, (d) => ({ ...d, queueSize: 0 })),
        withData(blk, (d) => ({ ...d, blockSize: 4096 })),
      ]),
    ).to.deep.equal([]);
  });
});
