import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { GuestAddress } from 'tsvmm';
import * as pub from 'tsvmm/virtio';
import { buildLocations } from '../../core/plugin/locations.js';
import { Tokens } from '../../core/tokens.js';
import { SplitQueue } from './split-queue.js';

/**
 * A device written only against the published `tsvmm/virtio` (imported by package name, as an
 * npm plugin would): each chain's readable bytes come back upper-cased in its writable buffers.
 */
class UpperDevice implements pub.VirtioDevice {
  readonly id = 'upper0';
  readonly deviceType = 0x7f;
  readonly queueMaxSizes = [8];
  readonly deviceFeatures = pub.VIRTIO_F_VERSION_1 | pub.VIRTIO_F_RING_EVENT_IDX;
  private act?: pub.VirtioActivation;
  private served?: pub.ServedQueue;
  readConfig(_offset: number, data: Uint8Array): void {
    data.fill(0);
  }
  writeConfig(): void {}
  activate(a: pub.VirtioActivation): void {
    this.act = a;
    this.served = new pub.ServedQueue({ queue: a.queues[0], interrupt: a.interrupt, needsReset: a.needsReset });
  }
  /** What a queue notification does. */
  process(): void {
    const { act, served } = this;
    if (!act || !served) return;
    served.serve(() => {
      for (let c = served.queue.pop(); c; c = served.queue.pop()) {
        const text = new pub.ChainReader(act.memory, c).read(c.readableLength);
        const w = new pub.ChainWriter(act.memory, c);
        w.write(new TextEncoder().encode(new TextDecoder().decode(text).toUpperCase()));
        served.addUsed(c.head, w.written);
      }
    });
  }
  reset(): void {
    this.served?.stop();
  }
}

describe('tsvmm/virtio (the published virtio library)', () => {
  it('resolves by package name to the same modules as the tree (one library, not a copy)', () => {
    expect(pub.SplitQueue).to.equal(SplitQueue);
    expect(pub.VIRTIO_TRANSPORT).to.equal(Tokens.VirtioTransport.token);
    for (const name of [
      'SplitQueue',
      'ChainReader',
      'ChainWriter',
      'DeviceNegotiation',
      'ServedQueue',
      'drainQueue',
      'selectVirtioTransport',
      'MockSplitQueue',
      'EchoDevice',
      'VirtQueueError',
    ]) {
      expect(typeof (pub as Record<string, unknown>)[name], name).to.equal('function');
    }
  });

  it('a device written against it negotiates, serves a queue driven by MockSplitQueue and interrupts', () => {
    const dev = new UpperDevice();
    const neg = new pub.DeviceNegotiation(dev.deviceFeatures);
    const { ACKNOWLEDGE, DRIVER, FEATURES_OK, DRIVER_OK } = pub.DeviceStatus;
    neg.writeStatus(ACKNOWLEDGE | DRIVER);
    neg.setDriverFeatureWord(1, Number(pub.VIRTIO_F_VERSION_1 >> 32n));
    neg.writeStatus(ACKNOWLEDGE | DRIVER | FEATURES_OK);
    expect(neg.writeStatus(ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK)).to.deep.equal({ action: 'activate' });

    const mem = pub.testGuestMemory(1 << 20);
    const drv = new pub.MockSplitQueue(mem, 8);
    const q = new pub.SplitQueue(0, 8);
    drv.configure(q);
    q.activate(mem, neg.driverFeatures);
    const signals: number[] = [];
    const resets: string[] = [];
    dev.activate({
      features: neg.driverFeatures,
      memory: mem,
      queues: [q],
      queueEvents: [],
      interrupt: { signalUsedQueue: (i) => signals.push(i), signalConfigChange: () => {} },
      needsReset: (r) => resets.push(r),
    });
    const out = drv.alloc(16);
    drv.addChain([
      { addr: drv.alloc(5, new TextEncoder().encode('hello')), len: 5 },
      { addr: out, len: 16, write: true },
    ]);
    dev.process();
    expect(drv.readUsed()).to.deep.equal([{ id: 0, len: 5 }]);
    expect(new TextDecoder().decode(mem.read(GuestAddress.of(out), 5))).to.equal('HELLO');
    expect(signals).to.deep.equal([0]);
    expect(resets).to.deep.equal([]);
  });

  describe('from a package outside the repository', () => {
    let dir: string;
    beforeEach(() => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'virtio-npm-'));
      // An npm plugin's own node_modules, with tsvmm installed (linked, as `npm link` would).
      fs.mkdirSync(path.join(dir, 'node_modules'));
      fs.symlinkSync(buildLocations().repoRoot, path.join(dir, 'node_modules', 'tsvmm'), 'dir');
    });
    afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

    it("plain JS imports 'tsvmm/virtio' and builds an EchoDevice on it; internals stay unexported", async () => {
      fs.writeFileSync(
        path.join(dir, 'device.mjs'),
        `import { EchoDevice, FakeEventSystem, VIRTIO_F_VERSION_1 } from 'tsvmm/virtio';
        export const device = new EchoDevice('echo0', new FakeEventSystem().loop, { features: VIRTIO_F_VERSION_1 });
        export async function internal() { return import('tsvmm/dist/plugins/virtio/split-queue.js'); }\n`,
      );
      const m = (await import(pathToFileURL(path.join(dir, 'device.mjs')).href)) as {
        device: pub.VirtioDevice;
        internal(): Promise<unknown>;
      };
      expect(m.device).to.be.instanceOf(pub.EchoDevice); // the same library the tree uses
      expect(m.device.deviceFeatures).to.equal(pub.VIRTIO_F_VERSION_1);
      try {
        await m.internal();
        expect.fail('a path outside the exports map was importable');
      } catch (e) {
        expect((e as { code?: string }).code).to.equal('ERR_PACKAGE_PATH_NOT_EXPORTED');
      }
    });
  });
});
