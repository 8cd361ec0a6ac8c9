import type { DependencyContainer } from 'tsyringe';
import type { Disposable } from '../../core/bus/bus.js';
import type { StopReason } from '../../core/lifecycle.js';
import type { PluginContext, PluginModule } from '../../core/plugin/plugin.js';
import { Tokens } from '../../core/tokens.js';
import { KvmConfigSchema, type KvmConfig } from './config.js';
import { KvmHypervisor } from './hypervisor.js';
import { kvmHostCheck } from './host-check.js';
import { adviseHugePages, mapGuestMemory } from './memory.js';
import { WorkerVcpuRunner } from './runner/worker-runner.js';
import type { KvmVm } from './vm.js';
import { HypervisorVmSnapshot } from '../../core/state/hypervisor-state.js';

/** Test seams: what registerKvm builds its hypervisor and runners with (default: the real ones). */
export interface KvmPluginSeams {
  hypervisor?: (devicePath: string) => KvmHypervisor;
  runner?: (...args: ConstructorParameters<typeof WorkerVcpuRunner>) => WorkerVcpuRunner;
}

/**
 * Registers the KVM backend (see README: the one owner of memory slots and the irqchip):
 *  - Hypervisor: a KvmHypervisor on `devicePath`, probed now (a host without usable KVM
 *    fails here with a clear reason, naming missing capabilities);
 *  - Vm: one KvmVm, created on first resolve with the in-kernel irqchip (x86: and the PIT);
 *    every GuestMemory region gets a memory slot then, or when the first VcpuRunner is built
 *    if GuestMemory was registered later (mapGuestMemory);
 *  - VcpuRunner: a WorkerVcpuRunner per resolve, running every vCPU created on the Vm
 *    by the time start() is called; PIO/MMIO exits go to the Bus on the main thread.
 * Disposing stops runners, then closes the Vm and the /dev/kvm fd; dispose resolves once they are closed.
 */
export function registerKvm(
  container: DependencyContainer,
  ctx: PluginContext<KvmConfig>,
  seams: KvmPluginSeams = {},
): Disposable[] {
  const cfg = KvmConfigSchema.parse(ctx.config ?? {});
  const logger = ctx.logger.child({ module: 'kvm' });
  const hv = seams.hypervisor?.(cfg.devicePath) ?? new KvmHypervisor({ devicePath: cfg.devicePath });
  const caps = hv.probe();
  try {
    hv.requireCapabilities(...cfg.requireCapabilities);
  } catch (e) {
    hv.close();
    throw e;
  }
  logger.debug({ device: cfg.devicePath, maxVcpus: caps.maxVcpus, maxMemorySlots: caps.maxMemorySlots }, 'kvm probed');
  container.register(Tokens.Hypervisor.token, { useValue: hv });

  // This plugin is the one owner of the VM's memory slots and of its in-kernel irqchip (README).
  let vm: KvmVm | undefined;
  let mapped = false;
  const mapMemory = (c: DependencyContainer, into: KvmVm): void => {
    if (mapped || !cfg.mapGuestMemory || !c.isRegistered(Tokens.GuestMemory.token, true)) return;
    const memory = c.resolve(Tokens.GuestMemory.token);
    mapGuestMemory(into, memory, { logDirtyPages: cfg.dirtyLog });
    mapped = true;
    if (cfg.transparentHugePages) {
      const refused = adviseHugePages(memory);
      if (refused.length) logger.debug({ refused }, 'MADV_HUGEPAGE refused for some guest RAM regions (no THP here?)');
    }
  };
  let stateRegistration: Disposable | undefined;
  container.register(Tokens.Vm.token, {
    useFactory: (c) => {
      if (vm) return vm;
      vm = hv.createKvmVm();
      // The in-kernel irqchip (x86: with the PIT) exists from the VM's creation on (as Firecracker sets up
      // its interrupt controller before devices attach), so transports can register irqfds at attach time.
      if (cfg.irqchip) vm.createIrqChip();
      mapMemory(c, vm);
      // Its opaque per-VM state (irqchip, PIT, clock) is saved and restored first (core/state).
      if (c.isRegistered(Tokens.StateRegistry.token, true))
        stateRegistration = c.resolve(Tokens.StateRegistry.token).add(new HypervisorVmSnapshot(vm), 'vm');
      return vm;
    },
  });

  const runners: WorkerVcpuRunner[] = [];
  container.register(Tokens.VcpuRunner.token, {
    useFactory: (c) => {
      const runVm = c.resolve(Tokens.Vm.token) as KvmVm;
      // GuestMemory registered after the Vm was made (a plugin order this plugin cannot see): map it now.
      mapMemory(c, runVm);
      const args: ConstructorParameters<typeof WorkerVcpuRunner> = [
        runVm,
        c.resolve(Tokens.Bus.token),
        c.resolve(Tokens.EventLoop.token),
        { notify: cfg.notify, logger, fastPath: cfg.fastPath },
      ];
      const r = seams.runner?.(...args) ?? new WorkerVcpuRunner(...args);
      r.events.on('error', (err, index) => logger.error({ err, vcpu: index }, 'vCPU error'));
      runners.push(r);
      return r;
    },
  });

  const onStopped = (reason: StopReason): void => {
    if (!cfg.logExitStats) return;
    for (const r of runners) {
      logger.info(
        {
          reason: reason.kind,
          exits: r.stats.byKind,
          guestMs: r.stats.guestNs / 1e6,
          fastPath: r.stats.fastPath?.(),
          hops: r.stats.hops.toJSON(16),
        },
        'vCPU exit statistics',
      );
    }
  };
  ctx.lifecycle.on('stopped', onStopped);

  // Runners are normally stopped by the machine already. Workers still running are stopped
  // first: their vCPU fds and kvm_run mappings must outlive them. The VM's dispose awaits the
  // promise dispose returns, so the Vm and /dev/kvm fds are closed before runVm returns; a
  // runner whose stop fails is logged and the fds are closed anyway (no unhandled rejection).
  let closing: Promise<void> | undefined;
  const close = async (): Promise<void> => {
    const stops = await Promise.allSettled(runners.map(async (r) => r.stop()));
    for (const s of stops) if (s.status === 'rejected') logger.warn({ err: s.reason }, 'stopping a vCPU runner failed');
    try {
      vm?.close();
    } finally {
      hv.close();
    }
  };
  return [
    {
      dispose: async (): Promise<void> => {
        ctx.lifecycle.off('stopped', onStopped);
        stateRegistration?.dispose();
        closing ??= close();
        await closing;
      },
    },
  ];
}

const plugin: PluginModule<KvmConfig> = {
  configSchema: KvmConfigSchema,
  register: registerKvm,
  hostCheck: () => kvmHostCheck(),
};
export default plugin;
