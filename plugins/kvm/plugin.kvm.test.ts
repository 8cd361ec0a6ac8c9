import 'reflect-metadata';
import { expect } from 'chai';
import type { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import { container as root } from 'tsyringe';
import { GuestAddress, GuestRange } from '../../core/address.js';
import { RangeBus } from '../../core/bus/range-bus.js';
import { UvEventLoop } from '../../core/events/uv-event-loop.js';
import { VmLifecycle } from '../../core/lifecycle.js';
import { createAnonymousMmapMemory } from '../../core/memory/backends/anonymous-mmap.js';
import { Tokens } from '../../core/tokens.js';
import { RecordingBusDevice } from '../../core/testing/bus-devices.js';
import { silentLogger } from '../../core/vmm/logger.js';
import type { PluginInstanceInfo } from '../../core/plugin/instance.js';
import plugin from './plugin.js';
import { KvmConfigSchema, type KvmConfig } from './config.js';
import { Asm, LONG_MODE_LAYOUT, setupLongMode, writeLongModeTables } from './testing.js';
import { KvmError } from './errors.js';
import type { KvmVm } from './vm.js';
import { registerPluginInstance } from '../../core/plugin/instance.js';

describe('kvm plugin registration (host /dev/kvm)', function () {
  this.timeout(30_000);
  before(function () {
    if (!existsSync('/dev/kvm')) this.skip();
  }); // reason: no /dev/kvm on this host

  const ctxFor = (config: Partial<KvmConfig>, lifecycle = new VmLifecycle()): PluginInstanceInfo<KvmConfig> => ({
    config: KvmConfigSchema.parse(config),
    vm: {} as never,
    logger: silentLogger(),
    lifecycle,
    baseDir: '.',
    instance: 'kvm',
  });

  it('provides a Vm with guest memory mapped and a runner that serves the Bus', async () => {
    const c = root.createChildContainer();
    const bus = new RangeBus();
    const loop = new UvEventLoop();
    const mem = createAnonymousMmapMemory({ backend: 'anonymous', regions: [{ start: 0n, size: 4n << 20n }] });
    c.register(Tokens.Bus.token, { useValue: bus });
    c.register(Tokens.EventLoop.token, { useValue: loop });
    c.register(Tokens.GuestMemory.token, { useValue: mem });
    c.register(Tokens.Lifecycle.token, { useValue: new VmLifecycle() });
    // No irqchip: the guest's hlt must reach the runner's exit handler.
    const disposables = (await registerPluginInstance(c, plugin, ctxFor({ irqchip: false }))) ?? [];
    try {
      const vm = c.resolve(Tokens.Vm.token) as KvmVm;
      expect(c.resolve(Tokens.Vm.token)).to.equal(vm);
      expect(vm.memorySlots().map((s) => s.size)).to.deep.equal([4n << 20n]);
      writeLongModeTables(mem);
      mem.write(GuestAddress.of(LONG_MODE_LAYOUT.code), new Asm().movEdx(0xe9).movEax(0x21).outDxAl().hlt().bytes());
      setupLongMode(vm.createVcpu(0), { entry: LONG_MODE_LAYOUT.code });
      const con = new RecordingBusDevice();
      bus.register('pio', GuestRange.of(0xe9n, 1n), con, 'debugcon');
      const runner = c.resolve(Tokens.VcpuRunner.token);
      let halted = false;
      runner.setExitHandler?.((_i, e) => {
        halted = e.kind === 'hlt';
        return 'stop';
      });
      await runner.start();
      await (runner as unknown as { done: Promise<void> }).done;
      expect(halted).to.equal(true);
      expect(Buffer.from(con.writtenBytes()).toString()).to.equal('!');
      await runner.stop();
    } finally {
      for (const d of disposables) d.dispose();
      await new Promise((r) => setTimeout(r, 10));
      loop.dispose();
      mem.close();
    }
  });

  // issue 18: the vCPU threads load their code while the rest of the VM is assembled and the kernel read
  describe('vCPU threads started at registration', () => {
    let c: ReturnType<typeof root.createChildContainer>;
    let loop: UvEventLoop;
    let mem: ReturnType<typeof createAnonymousMmapMemory>;
    let disposables: { dispose(): unknown }[];
    /** Registers the plugin for a VM of `vcpus` vCPUs; returns the thread list its runner shares with it. */
    const register = async (vcpus: number): Promise<EventEmitter[]> => {
      c = root.createChildContainer();
      loop = new UvEventLoop();
      mem = createAnonymousMmapMemory({ backend: 'anonymous', regions: [{ start: 0n, size: 4n << 20n }] });
      c.register(Tokens.Bus.token, { useValue: new RangeBus() });
      c.register(Tokens.EventLoop.token, { useValue: loop });
      c.register(Tokens.GuestMemory.token, { useValue: mem });
      c.register(Tokens.Lifecycle.token, { useValue: new VmLifecycle() });
      c.register(Tokens.VmConfig.token, { useValue: { machine: { vcpus, seccomp: 'false' } } as never });
      disposables = (await registerPluginInstance(c, plugin, ctxFor({ irqchip: false }))) ?? [];
      // the runner is built without prewarm(): what its list holds was started by the registration
      return (c.resolve(Tokens.VcpuRunner.token) as unknown as { spare: EventEmitter[] }).spare;
    };
    afterEach(async () => {
      for (const d of disposables) await d.dispose();
      loop.dispose();
      mem.close();
    });

    it('one per configured vCPU; the runner runs its vCPU on one of them and stop() ends the other', async () => {
      const spares = await register(2);
      expect(spares).to.have.length(2);
      const before = [...spares];
      const vm = c.resolve(Tokens.Vm.token) as KvmVm;
      writeLongModeTables(mem);
      mem.write(GuestAddress.of(LONG_MODE_LAYOUT.code), new Asm().hlt().bytes());
      setupLongMode(vm.createVcpu(0), { entry: LONG_MODE_LAYOUT.code });
      const runner = c.resolve(Tokens.VcpuRunner.token);
      runner.setExitHandler?.(() => 'stop');
      await runner.start();
      expect(spares).to.have.length(1); // one taken for vCPU 0, no thread of its own
      expect(before).to.include(spares[0]);
      await (runner as unknown as { done: Promise<void> }).done;
      const left = new Promise((res) => spares[0]!.once('exit', res));
      await runner.stop();
      expect(await left).to.equal(0);
    });

    it('a VM torn down before it ran ends them', async () => {
      const spares = [...(await register(3))];
      expect(spares).to.have.length(3);
      const exited = Promise.all(spares.map((w) => new Promise((res) => w.once('exit', res))));
      for (const d of disposables.splice(0)) await d.dispose();
      expect(await exited).to.deep.equal([0, 0, 0]);
    });
  });

  it('fails registration with the missing capability named', async () => {
    const c = root.createChildContainer();
    c.register(Tokens.Lifecycle.token, { useValue: new VmLifecycle() });
    try {
      await registerPluginInstance(c, plugin, ctxFor({ requireCapabilities: ['IRQFD', 'S390_UCONTROL'] }));
      expect.fail('registered');
    } catch (e) {
      expect(e).to.be.instanceOf(KvmError);
      expect((e as Error).message).to.match(/KVM_CAP_S390_UCONTROL/);
    }
  });
});
