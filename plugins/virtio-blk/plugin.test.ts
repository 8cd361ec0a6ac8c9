import 'reflect-metadata';
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { container as root } from 'tsyringe';
import { VmLifecycle } from '../../core/lifecycle.js';
import { silentLogger } from '../../core/testing/index.js';
import { Tokens } from '../../core/tokens.js';
import type { VirtioDevice } from '../../core/virtio/virtio.js';
import type { VirtioAttachment, VirtioTransportHost } from '../../core/virtio/transport.js';
import rawPlugin from '../raw-disk/plugin.js';
import { FakeEventSystem } from '../virtio/testing.js';
import { VIRTIO_BLK_F_MQ, VIRTIO_BLK_F_RO } from './constants.js';
import { VirtioBlkConfigSchema, type VirtioBlkConfig } from './config.js';
import type { PluginInstanceInfo } from '../../core/plugin/instance.js';
import { buildLocations } from '../../core/plugin/locations.js';
import type { PluginManifest } from '../../core/plugin/plugin.js';
import type { VirtioBlk } from './device.js';
import plugin from './plugin.js';
import { registerPluginInstance } from '../../core/plugin/instance.js';

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

describe('plugins/virtio-blk plugin', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vblk-plugin-'));
    fs.writeFileSync(path.join(dir, 'a.img'), Buffer.alloc(1 << 20));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  function setup(withRaw = true) {
    const c = root.createChildContainer();
    const transport = new FakeTransport();
    c.registerInstance(Tokens.EventLoop.token, new FakeEventSystem().loop);
    c.registerInstance(Tokens.VirtioTransport.token, transport);
    if (withRaw) void registerPluginInstance(c, rawPlugin, {} as never);
    const lifecycle = new VmLifecycle();
    const ctx = (config: unknown): PluginInstanceInfo<VirtioBlkConfig> => ({
      config: VirtioBlkConfigSchema.parse(config),
      vm: {} as never,
      logger: silentLogger(),
      lifecycle,
      baseDir: dir,
      instance: 'vdb',
    });
    return { c, transport, lifecycle, ctx };
  }

  it('opens the disk relative to the YAML folder and attaches a configured device', async () => {
    const s = setup();
    const d =
      (await registerPluginInstance(
        s.c,
        plugin,
        s.ctx({ path: 'a.img', readOnly: true, numQueues: 2, queueSize: 64 }),
      )) ?? [];
    expect(s.transport.attached).to.have.length(1);
    const dev = s.transport.attached[0] as VirtioBlk;
    expect(dev.id).to.equal('vdb');
    expect(dev.queueMaxSizes).to.deep.equal([64, 64]);
    expect(dev.deviceFeatures & (VIRTIO_BLK_F_RO | VIRTIO_BLK_F_MQ)).to.equal(VIRTIO_BLK_F_RO | VIRTIO_BLK_F_MQ);
    expect(dev.disk.size).to.equal(1n << 20n);
    for (const x of d) x.dispose();
    expect(s.transport.detached).to.equal(1);
  });

  it('closes the disk when the VM is torn down (its Disposable; no stop listener)', async () => {
    const s = setup();
    const d = await registerPluginInstance(s.c, plugin, s.ctx({ path: 'a.img' }));
    const dev = s.transport.attached[0] as VirtioBlk;
    const realClose = dev.disk.close.bind(dev.disk);
    const closedByStop = new Promise<void>((done) => {
      (dev.disk as { close: () => Promise<void> }).close = async () => {
        await realClose();
        done();
      };
    });
    for (const x of d.reverse()) await (x.dispose() as unknown);
    await closedByStop; // the teardown closed it (no timer: one that never closes the disk times the test out)
    expect(s.transport.detached).to.equal(1);
    try {
      await dev.disk.read(0n, [new Uint8Array(512)]);
      expect.fail('disk still open');
    } catch (e) {
      expect((e as Error).message).to.match(/closed/);
    }
  });

  it('dispose waits until the disk is closed (a qcow2 image releases its reserved clusters then)', async () => {
    const s = setup();
    const d = (await registerPluginInstance(s.c, plugin, s.ctx({ path: 'a.img' }))) ?? [];
    const dev = s.transport.attached[0] as VirtioBlk;
    const releases: (() => void)[] = [];
    let entered!: () => void;
    const closeEntered = new Promise<void>((r) => {
      entered = r;
    });
    const realClose = dev.disk.close.bind(dev.disk);
    let closed = false;
    (dev.disk as { close: () => Promise<void> }).close = async () => {
      entered();
      await new Promise<void>((r) => {
        releases.push(r);
      }); // held until the test lets it go
      await realClose();
      closed = true;
    };
    let closedWhenDisposed: boolean | undefined;
    const all = Promise.all(
      d.map(async (x) => {
        await (x.dispose() as unknown);
      }),
    ).then(() => {
      closedWhenDisposed = closed;
    });
    await closeEntered;
    expect(closedWhenDisposed, 'dispose resolved while the disk close was held').to.equal(undefined);
    for (const r of releases) r();
    await all;
    expect(closedWhenDisposed, 'dispose resolved before the disk closed').to.equal(true);
  });

  it('its manifest declares every token it injects (checked as under VMM_DEBUG)', async () => {
    const file = path.join(buildLocations().repoRoot, 'plugins', 'virtio-blk', 'vmm-plugin.json');
    const manifest = JSON.parse(fs.readFileSync(file, 'utf8')) as PluginManifest;
    const s = setup();
    const d = await registerPluginInstance(s.c, plugin, s.ctx({ path: 'a.img' }), { manifest, enforce: true });
    expect(s.transport.attached).to.have.length(1);
    for (const x of d.reverse()) await (x.dispose() as unknown);
    const without = { ...manifest, requires: manifest.requires.filter((t) => t !== 'VirtioTransport') };
    const e = await registerPluginInstance(s.c, plugin, s.ctx({ path: 'a.img' }), {
      manifest: without,
      enforce: true,
    }).then(
      () => expect.fail('an undeclared token was injected'),
      (err: Error) => err,
    );
    expect(e.message).to.match(/resolves token 'VirtioTransport', which its manifest does not declare/);
  });

  it('names the missing format provider and a missing file', async () => {
    const s = setup(false);
    try {
      await registerPluginInstance(s.c, plugin, s.ctx({ path: 'a.img' }));
      expect.fail();
    } catch (e) {
      expect((e as Error).message).to.match(/no DiskFormat provider named 'raw'/);
    }
    const s2 = setup();
    try {
      await registerPluginInstance(s2.c, plugin, s2.ctx({ path: 'missing.img' }));
      expect.fail();
    } catch (e) {
      expect((e as Error).message).to.match(/cannot open .*missing\.img/);
    }
  });

  it('schema: unknown keys, bad queue sizes and long serials are rejected', () => {
    expect(VirtioBlkConfigSchema.safeParse({ path: 'x', bogus: 1 }).success).to.equal(false);
    expect(VirtioBlkConfigSchema.safeParse({ path: 'x', queueSize: 100 }).success).to.equal(false);
    expect(VirtioBlkConfigSchema.safeParse({ path: 'x', serial: 'x'.repeat(21) }).success).to.equal(false);
    const ok = VirtioBlkConfigSchema.parse({
      path: 'x',
      rateLimiter: { bandwidth: { size: 1 << 20, refillTimeMs: 100 } },
    });
    expect([ok.format, ok.numQueues, ok.queueSize, ok.readOnly]).to.deep.equal(['raw', 1, 256, false]);
  });
});
