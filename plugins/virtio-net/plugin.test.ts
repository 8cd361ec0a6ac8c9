import 'reflect-metadata';
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { container as root } from 'tsyringe';
import { VmLifecycle } from '../../core/lifecycle.js';
import type { PluginInstanceInfo } from '../../core/plugin/instance.js';
import { buildLocations } from '../../core/plugin/locations.js';
import type { PluginManifest } from '../../core/plugin/plugin.js';
import { silentLogger } from '../../core/testing/index.js';
import { Tokens } from '../../core/tokens.js';
import type { VirtioAttachment, VirtioTransportHost } from '../../core/virtio/transport.js';
import type { VirtioDevice } from '../../core/virtio/virtio.js';
import { FakeEventSystem } from '../virtio/testing.js';
import { formatMac } from './config-space.js';
import { VirtioNetConfigSchema, type VirtioNetConfig } from './config.js';
import type { VirtioNet } from './device.js';
import plugin from './plugin.js';
import { registerPluginInstance } from '../../core/plugin/instance.js';

class FakeTransport implements VirtioTransportHost {
  readonly name = 'fake';
  attached: VirtioDevice[] = [];
  detached = 0;
  configChanges = 0;
  attachVirtioDevice(device: VirtioDevice): VirtioAttachment {
    this.attached.push(device);
    return {
      deviceId: device.id,
      transport: 'fake',
      location: 'nowhere',
      interrupt: {
        signalUsedQueue: () => {},
        signalConfigChange: () => {
          this.configChanges++;
        },
      },
      dispose: () => {
        this.detached++;
      },
    };
  }
}

describe('plugins/virtio-net plugin', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vnet-plugin-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  function setup() {
    const c = root.createChildContainer();
    const transport = new FakeTransport();
    c.registerInstance(Tokens.EventLoop.token, new FakeEventSystem().loop);
    c.registerInstance(Tokens.VirtioTransport.token, transport);
    const lifecycle = new VmLifecycle();
    const ctx = (config: unknown): PluginInstanceInfo<VirtioNetConfig> => ({
      config: VirtioNetConfigSchema.parse(config),
      vm: {} as never,
      logger: silentLogger(),
      lifecycle,
      baseDir: dir,
      instance: 'net0',
    });
    return { c, transport, lifecycle, ctx };
  }

  it('opens a unix-datagram backend relative to the YAML folder, attaches, closes the socket at teardown', async () => {
    const s = setup();
    const d =
      (await registerPluginInstance(
        s.c,
        plugin,
        s.ctx({ mac: '52:54:00:00:00:01', backend: { kind: 'socket', unix: { path: 'me.sock', peer: 'peer.sock' } } }),
      )) ?? [];
    expect(s.transport.attached).to.have.length(1);
    const dev = s.transport.attached[0] as VirtioNet;
    expect(formatMac(dev.mac)).to.equal('52:54:00:00:00:01');
    expect(dev.backend.kind).to.equal('unix-dgram');
    expect(fs.existsSync(path.join(dir, 'me.sock'))).to.equal(true);
    dev.setLink(false); // before activation the attachment's interrupt carries the config change
    expect(s.transport.configChanges).to.equal(1);
    for (const x of d.reverse()) x.dispose(); // the VM's teardown (no stop listener)
    expect(fs.existsSync(path.join(dir, 'me.sock'))).to.equal(false);
    expect(s.transport.detached).to.equal(1);
  });

  it('its manifest declares every token it injects (checked as under VMM_DEBUG)', async () => {
    const file = path.join(buildLocations().repoRoot, 'plugins', 'virtio-net', 'vmm-plugin.json');
    const manifest = JSON.parse(fs.readFileSync(file, 'utf8')) as PluginManifest;
    const s = setup();
    const cfg = s.ctx({ backend: { kind: 'socket', udp: { local: '127.0.0.1:0', remote: '127.0.0.1:9' } } });
    const d = await registerPluginInstance(s.c, plugin, cfg, { manifest, enforce: true });
    expect(s.transport.attached).to.have.length(1);
    for (const x of d.reverse()) x.dispose();
    const without = { ...manifest, requires: manifest.requires.filter((t) => t !== 'EventLoop') };
    const e = await registerPluginInstance(s.c, plugin, cfg, { manifest: without, enforce: true }).then(
      () => expect.fail('an undeclared token was injected'),
      (err: Error) => err,
    );
    expect(e.message).to.match(/resolves token 'EventLoop', which its manifest does not declare/);
  });

  it('picks a random locally administered unicast MAC by default', async () => {
    const s = setup();
    const d =
      (await registerPluginInstance(
        s.c,
        plugin,
        s.ctx({ backend: { kind: 'socket', udp: { local: '127.0.0.1:0', remote: '127.0.0.1:9' } } }),
      )) ?? [];
    const mac = (s.transport.attached[0] as VirtioNet).mac;
    expect(mac[0] & 0x03).to.equal(0x02);
    for (const x of d) x.dispose();
  });

  it('names the backend that failed to open', async () => {
    const s = setup();
    try {
      await registerPluginInstance(s.c, plugin, s.ctx({ backend: { kind: 'tap', name: 'tsvt-missing9' } }));
      expect.fail('opened a missing tap');
    } catch (e) {
      expect((e as Error).message).to.match(
        /net0: cannot open the tap backend: tap: interface 'tsvt-missing9' does not exist/,
      );
    }
    try {
      await registerPluginInstance(
        s.c,
        plugin,
        s.ctx({ queuePairs: 2, backend: { kind: 'socket', udp: { local: '127.0.0.1:0', remote: '127.0.0.1:9' } } }),
      );
      expect.fail('accepted 2 pairs on a socket');
    } catch (e) {
      expect((e as Error).message).to.match(/2 queue pairs asked but the udp backend has 1/);
    }
  });

  it('schema: unknown keys, multicast MACs, bad backends and sizes are rejected', () => {
    const ok = VirtioNetConfigSchema.parse({ backend: { kind: 'tap', name: 'tap0' } });
    expect([ok.queuePairs, ok.queueSize, ok.offloads, ok.linkUp]).to.deep.equal([1, 256, true, true]);
    const bad = [
      { backend: { kind: 'tap', name: 'tap0' }, bogus: 1 },
      { backend: { kind: 'tap', name: 'tap0' }, mac: '01:00:5e:00:00:01' },
      { backend: { kind: 'tap', name: 'tap0' }, mac: 'nope' },
      { backend: { kind: 'tap' } },
      { backend: { kind: 'tap', name: 'a/b' } },
      { backend: { kind: 'tap', name: 'x', fds: [3] } },
      { backend: { kind: 'socket' } },
      {
        backend: {
          kind: 'socket',
          unix: { path: 'a', peer: 'b' },
          udp: { local: '127.0.0.1:1', remote: '127.0.0.1:2' },
        },
      },
      { backend: { kind: 'socket', udp: { local: 'host:1', remote: '127.0.0.1:2' } } },
      { backend: { kind: 'socket', udp: { local: '127.0.0.1:70000', remote: '127.0.0.1:2' } } },
      { backend: { kind: 'vde' } },
      { backend: { kind: 'tap', name: 'tap0' }, queueSize: 100 },
      { backend: { kind: 'tap', name: 'tap0' }, queuePairs: 17 },
      { backend: { kind: 'tap', name: 'tap0' }, rateLimiter: { rx: { bandwidth: { size: 1 } } } },
    ];
    for (const b of bad) expect(VirtioNetConfigSchema.safeParse(b).success, JSON.stringify(b)).to.equal(false);
    const rl = VirtioNetConfigSchema.parse({
      backend: { kind: 'tap', name: 'tap0' },
      rateLimiter: { tx: { ops: { size: 1000, refillTimeMs: 1000 } } },
    });
    expect(rl.rateLimiter?.tx?.ops?.size).to.equal(1000);
  });
});
