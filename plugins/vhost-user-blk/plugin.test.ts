import 'reflect-metadata';
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { container as root } from 'tsyringe';
import { LinuxEventFdFactory } from '../../core/events/linux-eventfd.js';
import { UvEventLoop } from '../../core/events/uv-event-loop.js';
import { VmLifecycle } from '../../core/lifecycle.js';
import { registerPluginInstance, type PluginInstanceInfo } from '../../core/plugin/instance.js';
import { silentLogger } from '../../core/testing/index.js';
import { Tokens } from '../../core/tokens.js';
import type { VirtioAttachment, VirtioTransportHost } from '../../core/virtio/transport.js';
import { createMemfdMemory } from '../../core/memory/backends/memfd.js';
import { VIRTIO_F_VERSION_1, VirtioDeviceType, type VirtioDevice } from '../../core/virtio/virtio.js';
import { ProtocolFeature, Req, VHOST_USER_F_PROTOCOL_FEATURES } from '../vhost-user/protocol.js';
import { FakeVhostBackend } from '../vhost-user/testing.js';
import { SplitQueue } from '../virtio/split-queue.js';
import { MockSplitQueue } from '../virtio/testing.js';
import fsPlugin from '../virtio-fs/plugin.js';
import { VirtioFsConfigSchema } from '../virtio-fs/config.js';
import { VhostUserBlkConfigSchema } from './config.js';
import plugin from './plugin.js';

class FakeTransport implements VirtioTransportHost {
  readonly name = 'fake';
  attached: VirtioDevice[] = [];
  detached = 0;
  attachVirtioDevice(device: VirtioDevice): VirtioAttachment {
    this.attached.push(device);
    return {
      deviceId: device.id,
      transport: 'fake',
      location: 'nowhere',
      interrupt: { signalUsedQueue: () => {}, signalConfigChange: () => {} },
      dispose: () => {
        this.detached++;
      },
    };
  }
}

const FLUSH = 1n << 9n;
const CONFIG_WCE = 1n << 11n;

describe('plugins vhost-user-blk and virtio-fs (fake back end)', () => {
  let dir: string;
  let loop: UvEventLoop;
  const cleanup: (() => void)[] = [];
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vhost-plugin-'));
    loop = new UvEventLoop();
  });
  afterEach(() => {
    for (const f of cleanup.splice(0).reverse()) f();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  function backend(name: string, protocolFeatures: bigint, config?: Uint8Array, queueNum?: number) {
    const b = new FakeVhostBackend(path.join(dir, name), loop, {
      features: VIRTIO_F_VERSION_1 | FLUSH | CONFIG_WCE | (1n << 12n) | VHOST_USER_F_PROTOCOL_FEATURES,
      protocolFeatures,
      config,
      queueNum,
    });
    cleanup.push(() => b.dispose());
    return b;
  }

  function setup<T>(schema: { parse(v: unknown): T }, config: unknown, instance: string) {
    const c = root.createChildContainer();
    const transport = new FakeTransport();
    c.registerInstance(Tokens.EventLoop.token, loop);
    c.registerInstance(Tokens.EventFdFactory.token, new LinuxEventFdFactory());
    c.registerInstance(Tokens.VirtioTransport.token, transport);
    const info: PluginInstanceInfo<T> = {
      config: schema.parse(config),
      vm: {} as never,
      logger: silentLogger(),
      lifecycle: new VmLifecycle(),
      baseDir: dir,
      instance,
    };
    return { c, transport, info };
  }

  it('vhost-user-blk: config space from the back end, its features narrowed, num_queues set; dispose detaches', async () => {
    const cfg = new Uint8Array(60);
    new DataView(cfg.buffer).setBigUint64(0, 4096n, true);
    new DataView(cfg.buffer).setUint16(34, 4, true);
    backend('blk.sock', ProtocolFeature.CONFIG | ProtocolFeature.MQ, cfg, 4);
    const s = setup(VhostUserBlkConfigSchema, { socket: 'blk.sock', numQueues: 2, queueSize: 64 }, 'vub0');
    const d = (await registerPluginInstance(s.c, plugin, s.info)) ?? [];
    const dev = s.transport.attached[0];
    expect(dev.deviceType).to.equal(VirtioDeviceType.block);
    expect(dev.queueMaxSizes).to.deep.equal([64, 64]);
    expect(dev.deviceFeatures & FLUSH).to.equal(FLUSH);
    expect(dev.deviceFeatures & CONFIG_WCE).to.equal(0n);
    expect(dev.deviceFeatures & (1n << 12n)).to.equal(1n << 12n); // MQ
    const out = new Uint8Array(60);
    dev.readConfig(0, out);
    expect(new DataView(out.buffer).getBigUint64(0, true)).to.equal(4096n);
    expect(new DataView(out.buffer).getUint16(34, true)).to.equal(2);
    for (const x of d.reverse()) await x.dispose();
    expect(s.transport.detached).to.equal(1);
  });

  it('vhost-user-blk refuses a back end without GET_CONFIG, or with fewer queues, in one line', async () => {
    backend('noconf.sock', 0n);
    const a = setup(VhostUserBlkConfigSchema, { socket: 'noconf.sock' }, 'vub1');
    const failure = async (p: unknown): Promise<string> => {
      try {
        await p;
      } catch (e) {
        return (e as Error).message;
      }
      return 'no error';
    };
    expect(await failure(registerPluginInstance(a.c, plugin, a.info))).to.equal(
      'vub1: the back end does not offer its config space (GET_CONFIG)',
    );
    backend('oneq.sock', ProtocolFeature.CONFIG, new Uint8Array(60));
    const b = setup(VhostUserBlkConfigSchema, { socket: 'oneq.sock', numQueues: 2 }, 'vub2');
    expect(await failure(registerPluginInstance(b.c, plugin, b.info))).to.equal(
      'vub2: numQueues 2 but the back end serves 1',
    );
    expect(a.transport.attached.length + b.transport.attached.length).to.equal(0);
  });

  it('virtio-fs: type 26, the hiprio queue plus the request queues, the tag in the config space', async () => {
    backend('fs.sock', 0n);
    const s = setup(VirtioFsConfigSchema, { socket: 'fs.sock', tag: 'myfs', numRequestQueues: 2 }, 'fs0');
    const d = (await registerPluginInstance(s.c, fsPlugin, s.info)) ?? [];
    const dev = s.transport.attached[0];
    expect(dev.deviceType).to.equal(26);
    expect(dev.queueMaxSizes).to.deep.equal([128, 128, 128]);
    expect(dev.deviceFeatures & FLUSH).to.equal(0n); // no device-specific bits pass
    const out = new Uint8Array(40);
    dev.readConfig(0, out);
    expect(Buffer.from(out.subarray(0, 4)).toString()).to.equal('myfs');
    expect(out[4]).to.equal(0);
    expect(new DataView(out.buffer).getUint32(36, true)).to.equal(2);
    for (const x of d.reverse()) await x.dispose();
  });

  /** Activates `dev` as a transport would (every queue ready) and returns the regions its back end was given. */
  async function activatedRegions(dev: VirtioDevice, be: FakeVhostBackend): Promise<number> {
    const memory = createMemfdMemory({ regions: [{ start: 0n, size: 1n << 20n }], backend: 'memfd' });
    cleanup.push(() => memory.close());
    const events = new LinuxEventFdFactory();
    const queueEvents = dev.queueMaxSizes.map(() => events.create());
    cleanup.push(() => queueEvents.forEach((e) => e.close()));
    const queues = dev.queueMaxSizes.map((size, i) => {
      const q = new SplitQueue(i, size);
      new MockSplitQueue(memory, size, 0x1000n + (BigInt(i) << 16n)).configure(q);
      q.activate(memory, VIRTIO_F_VERSION_1);
      return q;
    });
    dev.activate({
      features: VIRTIO_F_VERSION_1,
      memory,
      queues,
      queueEvents,
      interrupt: { signalUsedQueue: () => {}, signalConfigChange: () => {} },
      needsReset: (why) => expect.fail(why),
    });
    await be.until(() => be.requests(Req.SET_VRING_ENABLE).length === queues.length);
    return be.requests(Req.SET_MEM_TABLE)[0].fds;
  }

  it('shadow rings for a back end without in-flight tracking: on by default for vhost-user-blk, off for virtio-fs', async () => {
    const blkBe = backend('blk.sock', ProtocolFeature.CONFIG, new Uint8Array(60));
    const blk = setup(VhostUserBlkConfigSchema, { socket: 'blk.sock' }, 'vub0');
    for (const x of (await registerPluginInstance(blk.c, plugin, blk.info)) ?? []) cleanup.push(() => void x.dispose());
    expect(blk.info.config.shadowRings).to.equal('auto');
    expect(await activatedRegions(blk.transport.attached[0], blkBe)).to.equal(2); // guest RAM + our rings
    // a restarted virtiofsd has lost the guest's FUSE session anyway: the VMM stays off its data path
    const fsBe = backend('fs.sock', 0n);
    const fs0 = setup(VirtioFsConfigSchema, { socket: 'fs.sock', tag: 'share' }, 'fs0');
    for (const x of (await registerPluginInstance(fs0.c, fsPlugin, fs0.info)) ?? [])
      cleanup.push(() => void x.dispose());
    expect(fs0.info.config.shadowRings).to.equal('off');
    expect(await activatedRegions(fs0.transport.attached[0], fsBe)).to.equal(1); // guest RAM only
  });

  it('virtio-fs refuses a tag longer than 36 bytes', () => {
    expect(() => VirtioFsConfigSchema.parse({ socket: 's', tag: 'x'.repeat(37) })).to.throw(/at most 36 bytes/);
  });
});
