import { kvmProblems } from './validate.js';
import 'reflect-metadata';
import { inject, injectable, Lifecycle, type InjectionToken } from 'tsyringe';
import type { Worker } from 'node:worker_threads';
import type { Bus, Disposable } from '../../core/bus/bus.js';
import type { EventLoop } from '../../core/events/event-loop.js';
import type { StopReason, VmLifecycle } from '../../core/lifecycle.js';
import type { Logger } from '../../core/logger.js';
import type { GuestMemory } from '../../core/memory/guest-memory.js';
import type { PluginMain, PluginModule } from '../../core/plugin/plugin.js';
import {
  BUS,
  EVENT_LOOP,
  GUEST_MEMORY,
  LIFECYCLE,
  PLUGIN_CONFIG,
  PLUGIN_LOGGER,
  Tokens,
  VM_CONFIG,
} from '../../core/tokens.js';
import type { VmConfig } from '../../core/config/schema.js';
import { vcpuThreadFilter } from '../../core/security/vcpu-policy.js';
import { vcpuThreadLists } from './vcpu-seccomp.js';
import { KvmConfigSchema, type KvmConfig } from './config.js';
import { KvmHypervisor } from './hypervisor.js';
import { kvmHostCheck } from './host-check.js';
import { adviseHugePages, mapGuestMemory } from './memory.js';
import { WorkerVcpuRunner, endSpareThreads, startSpareThreads } from './runner/worker-runner.js';
import type { KvmVm } from './vm.js';
import { HypervisorVmSnapshot } from '../../core/state/hypervisor-state.js';
import type { StateRegistry } from '../../core/state/registry.js';
import type { Countable, Device, DeviceRegistry } from '../../core/device/device.js';
import { exitCounters } from './runner/exit-counters.js';

const STATE_REGISTRY = Tokens.StateRegistry.token;
const DEVICE_REGISTRY = Tokens.DeviceRegistry.token;

/** Test seams: what registerKvm builds its hypervisor and runners with (default: the real ones). */
export interface KvmPluginSeams {
  hypervisor?: (devicePath: string) => KvmHypervisor;
  runner?: (...args: ConstructorParameters<typeof WorkerVcpuRunner>) => WorkerVcpuRunner;
}

/** Test seams: register a value under KVM_SEAMS (in the VM's container) to build fakes instead. */
export const KVM_SEAMS: InjectionToken<KvmPluginSeams> = Symbol('kvm plugin test seams');

/**
 * The KVM backend of one VM, built by constructor injection when the plugin registers (so a host without
 * usable KVM fails during assembly, naming the missing capabilities). It is the one owner of the VM's memory
 * slots and in-kernel irqchip (README):
 *  - Hypervisor: a KvmHypervisor on `devicePath`, probed now;
 *  - Vm: one KvmVm, made on first request with the in-kernel irqchip (x86: and the PIT); every GuestMemory
 *    region gets a memory slot then, or when the first VcpuRunner is built if GuestMemory came later;
 *  - VcpuRunner: a WorkerVcpuRunner per request, running every vCPU created on the Vm by the time start()
 *    is called; PIO/MMIO exits go to the Bus on the main thread. With machine.seccomp (VmConfig; default on) each
 *    vCPU thread installs the narrow vCPU-thread seccomp filter before its first KVM_RUN.
 * Disposing stops runners, then closes the Vm and the /dev/kvm fd; dispose resolves once they are closed.
 */
@injectable()
export class KvmBackend implements PluginMain {
  readonly hypervisor: KvmHypervisor;
  private readonly logger: Logger;
  private kvmVm?: KvmVm;
  private stateEntry?: Disposable;
  private mapped = false;
  private readonly runners: WorkerVcpuRunner[] = [];
  /** vCPU threads started as the VM is assembled (one per configured vCPU); the first runner takes them. */
  private readonly spareThreads: Worker[] = [];
  private closing?: Promise<void>;
  private saidNoFilter = false;

  constructor(
    @inject(PLUGIN_CONFIG) private readonly cfg: KvmConfig,
    @inject(PLUGIN_LOGGER) logger: Logger,
    @inject(LIFECYCLE) private readonly lifecycle: VmLifecycle,
    @inject(STATE_REGISTRY, { isOptional: true }) private readonly states: StateRegistry | undefined,
    @inject(DEVICE_REGISTRY, { isOptional: true }) private readonly devices: DeviceRegistry | undefined,
    @inject(KVM_SEAMS, { isOptional: true }) private readonly seams: KvmPluginSeams = {},
    @inject(VM_CONFIG, { isOptional: true }) private readonly vmConfig?: VmConfig,
  ) {
    this.logger = logger.child({ module: 'kvm' });
    const hv = seams.hypervisor?.(cfg.devicePath) ?? new KvmHypervisor({ devicePath: cfg.devicePath });
    const caps = hv.probe();
    try {
      hv.requireCapabilities(...cfg.requireCapabilities);
    } catch (e) {
      hv.close();
      throw e;
    }
    this.logger.debug(
      { device: cfg.devicePath, maxVcpus: caps.maxVcpus, maxMemorySlots: caps.maxMemorySlots },
      'kvm probed',
    );
    this.hypervisor = hv;
    // The vCPU threads take longest of anything before the first KVM_RUN to get ready (a Node thread, their module,
    // koffi: ~1.4 s in the nested sandbox); started here, they load while the other plugins register and the kernel
    // is read, instead of from the machine's start on (issue 18). Not with a test runner in place.
    if (!seams.runner) startSpareThreads(this.spareThreads, vmConfig?.machine.vcpus ?? 0);
  }

  /** The VM, made on the first call (with the irqchip); maps `memory` when given and not mapped yet. */
  vm(memory: GuestMemory | undefined): KvmVm {
    if (!this.kvmVm) {
      this.kvmVm = this.hypervisor.createKvmVm();
      // The in-kernel irqchip (x86: with the PIT) exists from the VM's creation on (as Firecracker sets up
      // its interrupt controller before devices attach), so transports can register irqfds at attach time.
      if (this.cfg.irqchip) this.kvmVm.createIrqChip();
      // Its opaque per-VM state (irqchip, PIT, clock) is saved and restored first (core/state).
      this.stateEntry = this.states?.add(new HypervisorVmSnapshot(this.kvmVm), 'vm');
    }
    this.mapMemory(this.kvmVm, memory);
    return this.kvmVm;
  }

  private mapMemory(vm: KvmVm, memory: GuestMemory | undefined): void {
    if (this.mapped || !this.cfg.mapGuestMemory || !memory) return;
    mapGuestMemory(vm, memory, { logDirtyPages: this.cfg.dirtyLog });
    this.mapped = true;
    if (this.cfg.transparentHugePages) {
      const refused = adviseHugePages(memory);
      if (refused.length)
        this.logger.debug({ refused }, 'MADV_HUGEPAGE refused for some guest RAM regions (no THP here?)');
    }
  }

  /** The vCPU threads' seccomp program for machine.seccomp; undefined (said once) where this host has no lists. */
  private vcpuFilter(): Uint8Array | undefined {
    const mode = this.vmConfig?.machine.seccomp ?? 'false';
    const filter = vcpuThreadFilter(mode, vcpuThreadLists());
    if (!filter && mode !== 'false' && !this.saidNoFilter) {
      this.saidNoFilter = true;
      this.logger.warn({ arch: process.arch }, 'no seccomp filter for the vCPU threads on this host architecture');
    }
    return filter;
  }

  /** A new runner for the VM's vCPUs (GuestMemory registered after the Vm was made is mapped now). */
  runner(w: KvmWiring): WorkerVcpuRunner {
    const args: ConstructorParameters<typeof WorkerVcpuRunner> = [
      this.vm(w.memory),
      w.bus,
      w.eventLoop,
      {
        notify: this.cfg.notify,
        logger: this.logger,
        fastPath: this.cfg.fastPath,
        // machine.seccomp: each vCPU thread gets the narrowest filter (core/security/vcpu-policy.ts)
        seccompFilter: this.vcpuFilter(),
        spares: this.spareThreads,
      },
    ];
    const r = this.seams.runner?.(...args) ?? new WorkerVcpuRunner(...args);
    r.events.on('error', (err, index) => this.logger.error({ err, vcpu: index }, 'vCPU error'));
    this.runners.push(r);
    return r;
  }

  private readonly onStopped = (reason: StopReason): void => {
    if (!this.cfg.logExitStats) return;
    for (const r of this.runners) {
      this.logger.info(
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

  /**
   * Logs exit statistics when the VM stops; returns the teardown. Runners are normally stopped by the
   * machine already. Workers still running are stopped first: their vCPU fds and kvm_run mappings must
   * outlive them. The VM's dispose awaits it, so the Vm and /dev/kvm fds are closed before runVm returns;
   * a runner whose stop fails is logged and the fds are closed anyway (no unhandled rejection).
   */
  attach(): Disposable[] {
    this.lifecycle.on('stopped', this.onStopped);
    // vCPU exits by kind as counters (core/device Countable): vm.counters and /metrics list them under 'kvm'.
    const exits: Device & Countable = { id: 'kvm', counters: () => exitCounters(this.runners.map((r) => r.stats)) };
    const counters = this.devices?.add(exits);
    return [
      ...(counters ? [counters] : []),
      {
        dispose: async (): Promise<void> => {
          this.lifecycle.off('stopped', this.onStopped);
          void this.stateEntry?.dispose();
          this.closing ??= this.close();
          await this.closing;
        },
      },
    ];
  }

  private async close(): Promise<void> {
    endSpareThreads(this.spareThreads); // none taken when the VM never started
    const stops = await Promise.allSettled(this.runners.map(async (r) => r.stop()));
    for (const s of stops)
      if (s.status === 'rejected') this.logger.warn({ err: s.reason }, 'stopping a vCPU runner failed');
    try {
      this.kvmVm?.close();
    } finally {
      this.hypervisor.close();
    }
  }
}

/** What the Vm and each runner are built from, injected when asked for (GuestMemory may be registered late). */
@injectable()
export class KvmWiring {
  constructor(
    @inject(KvmBackend) readonly backend: KvmBackend,
    @inject(BUS) readonly bus: Bus,
    @inject(EVENT_LOOP) readonly eventLoop: EventLoop,
    @inject(GUEST_MEMORY, { isOptional: true }) readonly memory?: GuestMemory,
  ) {}
}

const plugin: PluginModule<KvmConfig> = {
  configSchema: KvmConfigSchema,
  register(container) {
    container.register(KvmBackend, { useClass: KvmBackend }, { lifecycle: Lifecycle.ContainerScoped });
    container.register(Tokens.Hypervisor.token, { useFactory: (c) => c.resolve(KvmBackend).hypervisor });
    container.register(Tokens.Vm.token, {
      useFactory: (c) => {
        const w = c.resolve(KvmWiring);
        return w.backend.vm(w.memory);
      },
    });
    container.register(Tokens.VcpuRunner.token, {
      useFactory: (c) => {
        const w = c.resolve(KvmWiring);
        return w.backend.runner(w);
      },
    });
  },
  main: KvmBackend,
  hostCheck: () => kvmHostCheck(),
  validate: (config, vm) => kvmProblems(config, vm),
};
export default plugin;
