import 'reflect-metadata';
import type { DependencyContainer } from 'tsyringe';
import type { PluginContext } from '../../core/plugin/plugin.js';
import type { X86Config } from './config.js';
import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { container as root } from 'tsyringe';
import { VmConfigSchema } from '../../core/config/schema.js';
import { OrderedDeviceRegistry } from '../../core/device/ordered-registry.js';
import type { VcpuRunner } from '../../core/hypervisor/hypervisor.js';
import { VmLifecycle } from '../../core/lifecycle.js';
import { BackendGuestMemoryFactory } from '../../core/memory/factory.js';
import { CmdlineBuilder } from '../../core/platform/cmdline-builder.js';
import { OrderedStateRegistry } from '../../core/state/registry.js';
import { silentLogger } from '../../core/testing/index.js';
import { Tokens } from '../../core/tokens.js';
import { X86ConfigSchema } from './config.js';
import plugin from './plugin.js';
import { fakeBzImage } from './testing.js';
import { readSnapshot, takeSnapshot } from '../../core/state/persist.js';
import { VcpuSnapshot } from '../../core/state/vcpu-snapshot.js';
import { hostileStateProblems, roundTripState, withData } from '../../core/testing/state.js';
import { mockX86, mockX86Hypervisor } from './hypervisor/mock.js';
import { x86VcpuStateCheck } from './state.js';
import type { MockVcpu } from '../../core/testing/mock-hypervisor.js';
import { pluginContext, registerPluginInstance } from '../../core/plugin/instance.js';

function vcpuPair() {
  const vm = mockX86Hypervisor().createVm();
  const a = vm.createVcpu(0) as MockVcpu;
  const hb = mockX86Hypervisor();
  const b = hb.createVm().createVcpu(0) as MockVcpu;
  return { a, b, hb, sa: new VcpuSnapshot(a, x86VcpuStateCheck(a)), sb: new VcpuSnapshot(b, x86VcpuStateCheck(b)) };
}

/** Registers x86 the way the kernel does (its own scope, register, then main attached). */
const registerX86 = (c: DependencyContainer, ctx: PluginContext<X86Config>) => registerPluginInstance(c, plugin, ctx);
describe('x86 vCPU state through core/state (VcpuSnapshot)', () => {
  it('round-trips registers, segments, FPU bytes and LAPIC through JSON into another vCPU', () => {
    const { a, b, sa, sb } = vcpuPair();
    const x = mockX86(a);
    x.regs.rip = 0xffff_ffff_8100_0000n;
    x.regs.rsp = (1n << 64n) - 16n;
    x.sregs.cr3 = 0x1234_5000n;
    x.lapic[0x20] = 7;
    const { first, second, json } = roundTripState(sa, sb);
    expect(second).to.deep.equal(first);
    expect(first.id).to.equal('vcpu0');
    expect(json).to.include('{"$u64":"18446744071578845184"}');
    expect(mockX86(b).regs.rip).to.equal(0xffff_ffff_8100_0000n);
    expect(mockX86(b).regs.rsp).to.equal((1n << 64n) - 16n);
    expect(mockX86(b).lapic[0x20]).to.equal(7);
  });

  it('refuses a hostile vCPU state before setting anything', () => {
    const { hb, sa, sb } = vcpuPair();
    const good = takeSnapshot(sa);
    type Data = { arch: string; version: number; payload: Record<string, unknown> };
    const payload = (edit: (p: Record<string, unknown>) => Record<string, unknown>) =>
      withData(good, (d) => ({ ...d, payload: edit({ ...(d as unknown as Data).payload }) }));
    const problems = hostileStateProblems(sb, [
      withData(good, (d) => ({ ...d, arch: 'aarch64' })),
      withData(good, (d) => ({ ...d, version: 2 })),
      payload((p) => ({ ...p, regs: { ...(p.regs as object), rip: { $u64: '18446744073709551616' } } })),
      payload((p) => ({ ...p, regs: { ...(p.regs as object), rip: 5 } })),
      payload((p) => ({ ...p, lapic: { $bytes: 'AAAA' } })),
      payload((p) => ({ ...p, mpState: 'flying' })),
      payload((p) => ({ ...p, extra: 1 })),
    ]);
    expect(problems).to.deep.equal([]);
    const setters = hb
      .callsTo('vcpu0')
      .map((c) => c.method)
      .filter((m) => m.startsWith('set') || m === 'restoreExtendedState');
    expect(setters, 'nothing was set on the vCPU').to.deep.equal([]);
  });
});

describe('x86 plugin: state registration', () => {
  it('adds the machine at registration and each vCPU when the machine creates it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'x86-state-'));
    writeFileSync(join(dir, 'bzImage'), fakeBzImage());
    const c = root.createChildContainer();
    const config = VmConfigSchema.parse({ machine: { vcpus: 2, memory: '64M' }, boot: { kernel: 'bzImage' } });
    const states = new OrderedStateRegistry();
    const runner: VcpuRunner = {
      stats: { byKind: {} },
      start: async () => {},
      pause: async () => {},
      resume: async () => {},
      stop: async () => {},
    };
    const lifecycle = new VmLifecycle();
    c.register(Tokens.VmConfig.token, { useValue: config });
    c.register(Tokens.GuestMemoryFactory.token, { useValue: new BackendGuestMemoryFactory() });
    c.register(Tokens.StateRegistry.token, { useValue: states });
    c.register(Tokens.Vm.token, { useValue: mockX86Hypervisor().createVm() });
    c.register(Tokens.DeviceRegistry.token, { useValue: new OrderedDeviceRegistry() });
    c.register(Tokens.KernelCmdline.token, { useValue: new CmdlineBuilder('') });
    c.register(Tokens.Lifecycle.token, { useValue: lifecycle });
    c.register(Tokens.Logger.token, { useValue: silentLogger() });
    c.register(Tokens.VcpuRunner.token, { useValue: runner });
    const ctx = pluginContext(c, {
      config: X86ConfigSchema.parse({ acpi: false }),
      vm: config,
      logger: silentLogger(),
      lifecycle,
      baseDir: dir,
      instance: 'x86',
    });
    const disposables = await registerX86(c, ctx);
    try {
      expect(states.all().map((s) => s.id)).to.deep.equal(['machine']);
      const machine = c.resolve(Tokens.Machine.token);
      await machine.start();
      expect(states.all().map((s) => s.id)).to.deep.equal(['vcpu0', 'vcpu1', 'machine']);
      const saved = takeSnapshot(states.all()[2]!);
      expect(saved.data).to.deep.include({ vcpus: 2, acpi: false, booted: true, protocol: 'bzimage' });
      await machine.stop({ kind: 'poweroff' });
    } finally {
      for (const d of disposables.reverse()) await d.dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('saves the CPUID and refuses a state saved on a CPU with other features; bits that follow CR4/XCR0 may differ', () => {
    const { a, b, sa, sb } = vcpuPair();
    const leaf = (fn: number, index: number, regs: Partial<Record<'eax' | 'ebx' | 'ecx' | 'edx', number>>) => ({
      function: fn,
      index,
      flags: fn === 7 || fn === 0xd ? 1 : 0,
      eax: 0,
      ebx: 0,
      ecx: 0,
      edx: 0,
      ...regs,
    });
    const hostCpuid = [leaf(1, 0, { ecx: 0x1000, edx: 0x10 }), leaf(7, 0, { ebx: 0x20 }), leaf(0xd, 0, { ebx: 576 })];
    // the guest ran: OSXSAVE, OSPKE and the XSAVE size follow its CR4 and XCR0
    mockX86(a).setCpuid([
      leaf(1, 0, { ecx: 0x1000 | (1 << 27), edx: 0x10 }),
      leaf(7, 0, { ebx: 0x20, ecx: 1 << 4 }),
      leaf(0xd, 0, { ebx: 832 }),
    ]);
    const saved = takeSnapshot(sa);
    expect(JSON.stringify(saved.data)).to.include('"cpuid"');
    mockX86(b).setCpuid(hostCpuid); // what the restoring machine set from its host
    expect(() => readSnapshot(sb, saved)).not.to.throw();
    // a hypervisor listing zero-filled entries after the real ones (the CPU uses the first entry of a leaf)
    mockX86(b).setCpuid([...hostCpuid, leaf(1, 0, {}), leaf(7, 0, {})]);
    expect(() => readSnapshot(sb, saved)).not.to.throw();
    mockX86(b).setCpuid([hostCpuid[0]!, leaf(7, 0, { ebx: 0x21 }), hostCpuid[2]!]); // another CPU: one more feature
    expect(() => readSnapshot(sb, saved)).to.throw(
      /vCPU 0: the saved CPUID is not this host's \(leaf 0x7\.0 ebx was 0x20, here it is 0x21\)/,
    );
    mockX86(b).setCpuid(hostCpuid.slice(0, 2));
    expect(() => readSnapshot(sb, saved)).to.throw(/leaf 0xd\.0 was saved but this host has no such leaf/);
  });
});
