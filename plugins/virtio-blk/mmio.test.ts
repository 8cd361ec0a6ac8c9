import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { MockDiskBackend } from '../../core/testing/mock-disk.js';
import { mmioTestHost } from '../virtio-mmio/testing.js';
import { MockSplitQueue } from '../virtio/testing.js';
import { BlkRequestType, BlkStatus } from './constants.js';
import { VirtioBlk } from './device.js';
import { BlkTestDriver } from './testing.js';

describe('plugins/virtio-blk through the virtio-mmio transport', () => {
  it('negotiates, reads config through the window and serves requests end to end', async () => {
    const t = mmioTestHost({ memorySize: 4 << 20, ioeventfd: false });
    const disk = new MockDiskBackend(2 << 20);
    const dev = new VirtioBlk({ id: 'vda', disk, serial: 'mmio-serial', numQueues: 2, queueSize: 64 }, t.events.loop);
    const att = t.host.attachVirtioDevice(dev);
    const base = BigInt('0x' + /@0x([0-9a-f]+)/.exec(att.location)![1]); // 'mmio 4K@0x<base>:<gsi>'
    const drv = t.driverAt(base);
    expect(drv.read32(0x008)).to.equal(2); // DeviceID: block
    const capacity = new DataView(drv.readConfig(0, 8).buffer).getBigUint64(0, true);
    expect(capacity).to.equal(BigInt((2 << 20) / 512));
    const q0 = new MockSplitQueue(t.memory, 64, 0x10000n);
    const q1 = new MockSplitQueue(t.memory, 64, 0x200000n);
    drv.init([q0, q1]);
    expect(drv.status & 0x40).to.equal(0); // no DEVICE_NEEDS_RESET

    const b = new BlkTestDriver(q1);
    const data = randomBytes(2048);
    const w = b.write(4n, data);
    const id = b.request(BlkRequestType.GET_ID, 0n, { inLen: 20 });
    drv.notify(1);
    t.events.run();
    await dev.idle();
    expect([b.status(w), b.status(id)]).to.deep.equal([BlkStatus.OK, BlkStatus.OK]);
    expect(Buffer.from(b.data(id)).toString('latin1').replace(/\0+$/, '')).to.equal('mmio-serial');
    expect(Buffer.compare(disk.data.subarray(2048, 4096), data)).to.equal(0);
    expect(drv.ackInterrupts() & 1).to.equal(1);
    expect(dev.metrics.queue(1).requests).to.equal(2);
    att.dispose();
    await dev.destroy();
    expect(disk.closed).to.equal(true);
  });
});
