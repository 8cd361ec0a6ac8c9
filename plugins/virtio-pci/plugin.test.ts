import 'reflect-metadata';
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { container as root } from 'tsyringe';
import { VmConfigSchema } from '../../core/config/schema.js';
import { VmInterrupts } from '../../core/interrupts/vm-interrupts.js';
import { VmLifecycle } from '../../core/lifecycle.js';
import { registerPluginInstance } from '../../core/plugin/instance.js';
import type { PluginManifest } from '../../core/plugin/plugin.js';
import { PlatformResources } from '../../core/platform/platform-resources.js';
import { MockHypervisor, type MockVm } from '../../core/testing/mock-hypervisor.js';
import { silentLogger } from '../../core/testing/index.js';
import { testPlatformLayout } from '../../core/testing/test-layout.js';
import { testGuestMemory } from '../../core/testing/test-memory.js';
import { Tokens } from '../../core/tokens.js';
import type { VirtioTransportHost } from '../../core/virtio/transport.js';
import rawPlugin from '../raw-disk/plugin.js';
import blkPlugin from '../virtio-blk/plugin.js';
import { BlkRequestType, BlkStatus } from '../virtio-blk/constants.js';
import { BlkTestDriver } from '../virtio-blk/testing.js';
import { FakeEventSystem, MockSplitQueue } from '../virtio/testing.js';
import { CfgType, Common } from './layout.js';
import plugin from './plugin.js';
import { TestPciBus } from '../pci/testing.js';
import { VirtioPciDriver } from './testing.js';
import type { VirtioPciFunction } from './function.js';
import type { VirtioBlk } from '../virtio-blk/device.js';

const manifestOf = (dir: string): PluginManifest =>
  JSON.parse(fs.readFileSync(path.join('plugins', dir, 'vmm-plugin.json'), 'utf8')) as PluginManifest;

describe('virtio-pci plugin with the virtio-blk plugin (manifests enforced)', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vpci-plugin-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('registers transport "pci"; a disk with `transport: pci` becomes function 1af4:1042 and serves I/O', async () => {
    const image = Buffer.alloc(1 << 20);
    fs.writeFileSync(path.join(dir, 'a.img'), image);
    const c = root.createChildContainer();
    const events = new FakeEventSystem();
    const hv = new MockHypervisor();
    const vm = hv.createVm() as MockVm;
    (vm.capabilities as { irqfd: boolean }).irqfd = false;
    const memory = testGuestMemory(4 << 20);
    const resources = new PlatformResources(testPlatformLayout());
    const interrupts = new VmInterrupts({ resources, vm: () => vm, eventFds: events.factory, eventLoop: events.loop });
    const bus = new TestPciBus({ interrupts });
    c.registerInstance(Tokens.PciBus.token, bus);
    c.registerInstance(Tokens.Interrupts.token, interrupts);
    c.registerInstance(Tokens.EventFdFactory.token, events.factory);
    c.registerInstance(Tokens.EventLoop.token, events.loop);
    c.registerInstance(Tokens.GuestMemory.token, memory);
    c.registerInstance(Tokens.Vm.token, vm);
    const lifecycle = new VmLifecycle();
    const info = (instance: string, config: unknown) => ({
      config: config as never,
      vm: VmConfigSchema.parse({ machine: { memory: '4M' } }),
      logger: silentLogger(),
      lifecycle,
      baseDir: dir,
      instance,
    });
    const opts = (name: string) => ({
      manifest: manifestOf(name),
      manifestPath: `plugins/${name}/vmm-plugin.json`,
      enforce: true,
    });
    const undo = [
      ...(await registerPluginInstance(c, rawPlugin, info('raw-disk', {}), opts('raw-disk'))),
      ...(await registerPluginInstance(c, plugin, info('virtio-pci', {}), opts('virtio-pci'))),
    ];
    const transports = c.resolveAll<VirtioTransportHost>(Tokens.VirtioTransport.token);
    expect(transports.map((t) => t.name)).to.deep.equal(['pci']);
    const blkConfig = { path: 'a.img', transport: 'pci', numQueues: 1, queueSize: 64, serial: 'pci-serial' };
    undo.push(
      ...(await registerPluginInstance(
        c,
        blkPlugin,
        info('vda', blkPlugin.configSchema!.parse(blkConfig)),
        opts('virtio-blk'),
      )),
    );
    const att = bus.attachments()[0];
    const drv = new VirtioPciDriver(bus, att);
    expect([drv.cfgRead(0, 2), drv.cfgRead(2, 2)]).to.deep.equal([0x1af4, 0x1042]);
    expect(drv.cfgRead(0x08, 4) >>> 8).to.equal(0x010000); // mass storage
    expect(Number(drv.read(CfgType.device, 0, 8))).to.equal((1 << 20) / 512); // capacity in sectors
    drv.enableMsix(2);
    drv.negotiate();
    drv.setCommon(Common.msixConfig, 2, 0);
    const q = new MockSplitQueue(memory, 64, 0x10000n);
    drv.setupQueue(0, q, 1);
    expect(drv.driverOk() & 0x40).to.equal(0);
    const b = new BlkTestDriver(q);
    const data = randomBytes(1024);
    const w = b.write(2n, data);
    const id = b.request(BlkRequestType.GET_ID, 0n, { inLen: 20 });
    drv.notify(0);
    events.run();
    await ((att.device as VirtioPciFunction).device as VirtioBlk).idle();
    expect([b.status(w), b.status(id)]).to.deep.equal([BlkStatus.OK, BlkStatus.OK]);
    expect(Buffer.from(b.data(id)).toString('latin1').replace(/\0+$/, '')).to.equal('pci-serial');
    expect(vm.msis.some((m) => m.data === 0x41)).to.equal(true); // the queue's vector
    for (const d of undo.reverse()) await d.dispose();
    expect(bus.attachments()).to.have.length(0);
    expect(fs.readFileSync(path.join(dir, 'a.img')).subarray(1024, 2048).equals(data)).to.equal(true);
  });
});
