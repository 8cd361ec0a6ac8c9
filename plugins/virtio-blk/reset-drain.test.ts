import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import sinon from 'sinon';
import type { Logger } from '../../core/logger.js';
import { MockDiskBackend } from '../../core/testing/mock-disk.js';
import { mmioTestHost } from '../virtio-mmio/testing.js';
import { pciTestHost } from '../virtio-pci/testing.js';
import { DeviceStatus } from '../virtio/constants.js';
import { RESET_DRAIN_LIMIT_MS } from '../virtio/session.js';
import { MockSplitQueue } from '../virtio/testing.js';
import { VirtioBlk } from './device.js';
import { BlkTestDriver } from './testing.js';

const ALL_OK = DeviceStatus.ACKNOWLEDGE | DeviceStatus.DRIVER | DeviceStatus.FEATURES_OK | DeviceStatus.DRIVER_OK;

/** A disk whose writes wait at the back end until open(). */
class GateDisk extends MockDiskBackend {
  held = 0;
  private waiting: (() => void)[] = [];
  override async write(offset: bigint, from: Uint8Array[]): Promise<void> {
    this.held++;
    await new Promise<void>((res) => this.waiting.push(res));
    this.held--;
    return super.write(offset, from);
  }
  open(): void {
    for (const r of this.waiting.splice(0)) r();
  }
}

/** A logger that keeps error and warning messages. */
function recordingLogger(): { logger: Logger; errors: string[]; warnings: string[] } {
  const errors: string[] = [];
  const warnings: string[] = [];
  const none = () => {};
  const logger: Logger = {
    trace: none,
    debug: none,
    info: none,
    warn: (_o: object | string, msg?: string) => void warnings.push(msg ?? ''),
    error: (_o: object | string, msg?: string) => void errors.push(msg ?? ''),
    child: () => logger,
  };
  return { logger, errors, warnings };
}

/** One turn of the event loop: the promise callbacks of finished disk calls have run. */
const turn = () => new Promise((res) => setImmediate(res));

/** What both transports' tests drive: the guest's status register, its notify, and the fake loop. */
interface Rig {
  status(): number;
  setStatus(v: number): void;
  notify(): void;
  run(): void;
  queue: MockSplitQueue;
}

/** Posts one write, lets the device take it to the (held) disk. */
async function writeHeldAtDisk(r: Rig, disk: GateDisk): Promise<void> {
  new BlkTestDriver(r.queue).write(4n, randomBytes(512));
  r.notify();
  r.run();
  for (let i = 0; i < 100 && disk.held === 0; i++) await turn();
  expect(disk.held, 'the write reached the disk').to.equal(1);
}

function mmioRig(disk: GateDisk): { rig: Rig; dev: VirtioBlk; drained: () => number } {
  const t = mmioTestHost({ memorySize: 4 << 20, ioeventfd: false });
  const dev = new VirtioBlk({ id: 'vda', disk, queueSize: 64 }, t.events.loop);
  const att = t.host.attachVirtioDevice(dev);
  const drv = t.driverAt(BigInt('0x' + /@0x([0-9a-f]+)/.exec(att.location)![1]));
  const queue = new MockSplitQueue(t.memory, 64, 0x10000n);
  expect(drv.init([queue])).to.equal(ALL_OK);
  const rig: Rig = {
    status: () => drv.status,
    setStatus: (v) => drv.setStatus(v),
    notify: () => drv.notify(0),
    run: () => t.events.run(),
    queue,
  };
  return { rig, dev, drained: () => t.host.transports[0]!.metrics.drainedResets };
}

function pciRig(disk: GateDisk, logger?: Logger): { rig: Rig; dev: VirtioBlk } {
  const t = pciTestHost({ memorySize: 4 << 20, ioeventfd: false, logger });
  const dev = new VirtioBlk({ id: 'vda', disk, queueSize: 64 }, t.events.loop);
  t.host.attachVirtioDevice(dev);
  const drv = t.driver();
  const queue = new MockSplitQueue(t.memory, 64, 0x10000n);
  drv.negotiate();
  drv.setupQueue(0, queue);
  expect(drv.driverOk()).to.equal(ALL_OK);
  const rig: Rig = {
    status: () => drv.status,
    setStatus: (v) => drv.setStatus(v),
    notify: () => drv.notify(0),
    run: () => t.events.run(),
    queue,
  };
  return { rig, dev };
}

describe('virtio reset completes only once the device drained (virtio-blk request held at the disk)', () => {
  for (const [name, make] of [
    ['virtio-mmio Status', (d: GateDisk) => mmioRig(d)],
    ['virtio-pci device_status', (d: GateDisk) => pciRig(d)],
  ] as const) {
    it(`${name}: reads non-zero while the write is at the disk, 0 once it ended; the driver then starts again`, async () => {
      const disk = new GateDisk(1 << 20);
      const { rig, dev } = make(disk);
      await writeHeldAtDisk(rig, disk);
      rig.setStatus(0);
      expect(rig.status(), 'a reset with a request at the disk is not complete').to.equal(ALL_OK);
      rig.setStatus(DeviceStatus.ACKNOWLEDGE); // a driver that did not wait: refused
      expect(rig.status()).to.equal(ALL_OK);
      disk.open();
      await dev.idle();
      await turn();
      expect(rig.status(), 'drained: the reset is complete').to.equal(0);
      rig.setStatus(DeviceStatus.ACKNOWLEDGE);
      expect(rig.status()).to.equal(DeviceStatus.ACKNOWLEDGE);
      await dev.destroy();
    });
  }

  it('a reset with nothing in flight reads 0 at once; a drained one is counted', async () => {
    const disk = new GateDisk(1 << 20);
    const { rig, dev, drained } = mmioRig(disk);
    rig.setStatus(0);
    expect(rig.status()).to.equal(0);
    expect(drained()).to.equal(0);
    rig.setStatus(DeviceStatus.ACKNOWLEDGE);
    await dev.destroy();
    const disk2 = new GateDisk(1 << 20);
    const second = mmioRig(disk2);
    await writeHeldAtDisk(second.rig, disk2);
    second.rig.setStatus(0);
    expect(second.drained()).to.equal(1);
    disk2.open();
    await second.dev.idle();
    await second.dev.destroy();
  });

  it('a device that does not drain within the bound is marked broken, logged once, until it drains', async () => {
    const disk = new GateDisk(1 << 20);
    const { logger, errors, warnings } = recordingLogger();
    const { rig, dev } = pciRig(disk, logger);
    await writeHeldAtDisk(rig, disk);
    const clock = sinon.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      rig.setStatus(0);
      clock.tick(RESET_DRAIN_LIMIT_MS - 1);
      expect(rig.status()).to.equal(ALL_OK);
      clock.tick(1);
      expect(rig.status(), 'broken: DEVICE_NEEDS_RESET').to.equal(DeviceStatus.DEVICE_NEEDS_RESET);
      expect(errors.filter((e) => /device marked broken/.test(e))).to.have.length(1);
      rig.setStatus(0);
      clock.tick(RESET_DRAIN_LIMIT_MS);
      expect(errors.filter((e) => /device marked broken/.test(e))).to.have.length(1);
    } finally {
      clock.restore();
    }
    disk.open();
    await dev.idle();
    await turn();
    expect(rig.status()).to.equal(0);
    expect(warnings.some((w) => /drained after all/.test(w))).to.equal(true);
    await dev.destroy();
  });
});
