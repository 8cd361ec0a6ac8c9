import 'reflect-metadata';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'chai';
import { container as root } from 'tsyringe';
import { RangeBus } from '../../core/bus/range-bus.js';
import { VmLifecycle } from '../../core/lifecycle.js';
import { CmdlineBuilder } from '../../core/platform/cmdline-builder.js';
import { PlatformResources } from '../../core/platform/platform-resources.js';
import { VmInterrupts } from '../../core/interrupts/vm-interrupts.js';
import { testPlatformLayout } from '../../core/testing/test-layout.js';
import { testGuestMemory } from '../../core/testing/test-memory.js';
import { Tokens } from '../../core/tokens.js';
import type { PluginInstanceInfo } from '../../core/plugin/instance.js';
import type { Logger } from '../../core/logger.js';
import { VIRTIO_F_VERSION_1, type VirtioDevice } from '../../core/virtio/virtio.js';
import { EchoDevice, FakeEventSystem, MockSplitQueue } from '../virtio/testing.js';
import { VirtioMmioError } from './errors.js';
import plugin from './plugin.js';
import { Reg } from './registers.js';
import { mmioTestHost } from './testing.js';
import { virtioMmioDsdt } from './acpi.js';
import { readTables } from '../acpi/testing.js';

/** The DSDT's body as the host's ACPI contribution leaves it. */
const dsdtBody = (t: ReturnType<typeof mmioTestHost>): number[] => [
  ...readTables(t.acpi.build(0n)).get('DSDT')!.subarray(36),
];
import { registerPluginInstance } from '../../core/plugin/instance.js';
import { buildLocations } from '../../core/plugin/locations.js';
import type { PluginManifest } from '../../core/plugin/plugin.js';

const quiet: Logger = { trace() {}, debug() {}, info() {}, warn() {}, error() {}, child: () => quiet };

describe('virtio-mmio host (attach)', () => {
  it('allocates a window and a GSI, wires one ioeventfd per queue and an irqfd, and announces the device', () => {
    const t = mmioTestHost();
    const dev = new EchoDevice('echo0', t.events.loop);
    const att = t.host.attachVirtioDevice(dev);
    const reg = t.bus.registrations('mmio')[0];
    const base = reg.range.start.value;
    expect(reg.range.length).to.equal(0x1000n);
    expect(att.transport).to.equal('mmio');
    const gsi = t.vm.irqfds[0].gsi;
    expect(att.location).to.equal(`mmio 4K@0x${base.toString(16)}:${gsi}`);
    expect(t.cmdline.toString()).to.contain(`virtio_mmio.device=4K@0x${base.toString(16)}:${gsi}`);
    // Described in the ACPI DSDT too (how Debian's kernels find virtio-mmio).
    expect(dsdtBody(t)).to.deep.equal([...virtioMmioDsdt([{ base, size: 0x1000n, gsi }])]);
    expect(t.vm.ioeventfds).to.have.length(1);
    expect(t.vm.ioeventfds[0].at).to.deep.equal({ space: 'mmio', address: base + 0x50n, length: 4, datamatch: 0n });

    // The data path: the ioeventfd fires (as KVM would on a QueueNotify write), the
    // device serves the queue, and the interrupt goes out through the irqfd.
    const drv = t.driverAt(base);
    const q = new MockSplitQueue(t.memory, 16);
    drv.init([q], VIRTIO_F_VERSION_1);
    const head = q.addChain([
      { addr: q.alloc(2, Uint8Array.from([1, 2])), len: 2 },
      { addr: q.alloc(2), len: 2, write: true },
    ]);
    t.events.factory.created.find((e) => e.fd === t.vm.ioeventfds[0].fd)!.write(1n);
    t.events.run();
    expect(q.readUsed()).to.deep.equal([{ id: head, len: 2 }]);
    const irqfd = t.events.factory.created.find((e) => e.fd === t.vm.irqfds[0].fd)!;
    expect(irqfd.pending).to.equal(1n);
    expect(drv.read32(Reg.InterruptStatus)).to.equal(1);
    expect(t.vm.irqLines.size).to.equal(0); // no irqchip pin toggling on the irqfd path
  });

  it('gives each device its own window, GSI and one ioeventfd per queue', () => {
    const t = mmioTestHost();
    const two: VirtioDevice = Object.assign(new EchoDevice('a', t.events.loop), { queueMaxSizes: [8, 8, 4] });
    t.host.attachVirtioDevice(two);
    t.host.attachVirtioDevice(new EchoDevice('b', t.events.loop));
    const [ra, rb] = t.bus.registrations('mmio');
    expect(ra.range.overlaps(rb.range)).to.equal(false);
    expect(t.vm.irqfds[0].gsi).to.not.equal(t.vm.irqfds[1].gsi);
    expect(t.vm.ioeventfds.map((x) => x.at.datamatch)).to.deep.equal([0n, 1n, 2n, 0n]);
    expect(t.cmdline.toString().match(/virtio_mmio\.device=/g)).to.have.length(2);
  });

  it('detaching undoes everything, closes the eventfds and frees the window and line for reuse', () => {
    const t = mmioTestHost();
    const att = t.host.attachVirtioDevice(new EchoDevice('e', t.events.loop));
    att.dispose();
    expect(t.bus.registrations('mmio')).to.have.length(0);
    expect(dsdtBody(t)).to.deep.equal([]);
    expect(t.vm.ioeventfds).to.have.length(0);
    expect(t.vm.irqfds).to.have.length(0);
    expect(t.events.factory.created.every((e) => e.closed)).to.equal(true);
    expect(t.resources.allocations('mmio32')).to.have.length(0);
    expect(t.resources.allocations('irq').map((a) => a.owner)).to.deep.equal(['reserved']);
    const again = t.host.attachVirtioDevice(new EchoDevice('f', t.events.loop));
    expect(again.location, 'a hot-added device gets the freed window and line').to.equal(att.location);
  });

  it('falls back to bus notifications and irqchip pulses without ioeventfd/irqfd', () => {
    const t = mmioTestHost({ ioeventfd: false, irqfd: false });
    t.host.attachVirtioDevice(new EchoDevice('e', t.events.loop));
    expect(t.vm.ioeventfds).to.have.length(0);
    const base = t.bus.registrations('mmio')[0].range.start.value;
    const drv = t.driverAt(base);
    const q = new MockSplitQueue(t.memory, 16);
    drv.init([q], VIRTIO_F_VERSION_1);
    q.addChain([{ addr: q.alloc(1), len: 1 }]);
    drv.notify(0);
    t.events.run();
    expect(q.readUsed()).to.have.length(1);
    const pulses = t.hypervisor.callsTo('vm', 'setIrqLine').map((c) => c.args[1]);
    expect(pulses).to.deep.equal([true, false]);
  });

  it('refuses devices it cannot serve', () => {
    const t = mmioTestHost();
    const base = new EchoDevice('x', t.events.loop);
    const bad: VirtioDevice[] = [
      Object.assign(new EchoDevice('v', t.events.loop), { deviceFeatures: 0n }),
      Object.assign(new EchoDevice('q0', t.events.loop), { queueMaxSizes: [] }),
      Object.assign(new EchoDevice('q3', t.events.loop), { queueMaxSizes: [3] }),
      Object.assign(new EchoDevice('big', t.events.loop), { queueMaxSizes: [65536] }),
    ];
    for (const d of bad) expect(() => t.host.attachVirtioDevice(d)).to.throw(VirtioMmioError);
    t.host.attachVirtioDevice(base);
    expect(() => t.host.attachVirtioDevice(base)).to.throw(VirtioMmioError, /already attached/);
    expect(t.bus.registrations('mmio')).to.have.length(1);
  });
});

describe('virtio-mmio plugin', () => {
  it('registers one VirtioTransport host per VM, injected as its manifest declares; teardown detaches', async () => {
    const c = root.createChildContainer();
    const events = new FakeEventSystem();
    const memory = testGuestMemory(1 << 20);
    const cmdline = new CmdlineBuilder('');
    c.registerInstance(Tokens.Bus.token, new RangeBus());
    const resources = new PlatformResources(testPlatformLayout());
    c.registerInstance(Tokens.Resources.token, resources);
    c.registerInstance(
      Tokens.Interrupts.token,
      new VmInterrupts({ resources, vm: () => undefined, eventFds: events.factory }),
    );
    c.registerInstance(Tokens.KernelCmdline.token, cmdline);
    c.registerInstance(Tokens.EventFdFactory.token, events.factory);
    c.registerInstance(Tokens.GuestMemory.token, memory);
    const lifecycle = new VmLifecycle();
    const ctx = {
      config: {},
      vm: {} as never,
      logger: quiet,
      lifecycle,
      baseDir: '.',
      instance: 'virtio-mmio',
    } as PluginInstanceInfo<Record<string, never>>;
    const file = path.join(buildLocations().repoRoot, 'plugins', 'virtio-mmio', 'vmm-plugin.json');
    const manifest = JSON.parse(fs.readFileSync(file, 'utf8')) as PluginManifest;
    const disposables = await registerPluginInstance(c, plugin, ctx, { manifest, enforce: true });
    const host = c.resolve(Tokens.VirtioTransport.token);
    expect(host.name).to.equal('mmio');
    expect(c.resolveAll(Tokens.VirtioTransport.token)).to.deep.equal([host]); // one host, the same every time
    host.attachVirtioDevice(new EchoDevice('e', events.loop));
    expect(cmdline.toString()).to.match(/^virtio_mmio\.device=4K@0x[0-9a-f]+:\d+$/);
    expect(() => plugin.configSchema!.parse({ bogus: 1 })).to.throw();
    for (const d of disposables ?? []) d.dispose();
    expect(c.resolve(Tokens.Bus.token).registrations('mmio')).to.have.length(0);
  });
});
