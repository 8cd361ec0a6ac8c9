import type { VmConfig } from '../../core/config/schema.js';
import type { DeviceRegistry } from '../../core/device/device.js';
import { pauseParts, resumeParts, teardownParts, type MachineParts } from '../../core/machine-steps.js';
import type { Vcpu, VcpuExit, VcpuRunner, VcpuRunState, Vm } from '../../core/hypervisor/hypervisor.js';
import type { VmLifecycle, StopReason } from '../../core/lifecycle.js';
import type { Logger } from '../../core/logger.js';
import type { Machine } from '../../core/machine.js';
import type { GuestMemory } from '../../core/memory/guest-memory.js';
import type { KernelCmdline } from '../../core/platform/resources.js';
import { X86Layout } from './layout.js';
import { loadLinux, type BootPlan, type BootProtocol } from './boot/loader.js';
import { withBootFiles } from './boot/files.js';
import type { BootImage } from './boot/image.js';
import { markStartup } from '../../core/vmm/timings.js';
import { findCpuid, vcpuCpuid } from './cpu/cpuid.js';
import { configureVcpu } from './cpu/vcpu-setup.js';
import { X86BootError } from './errors.js';
import { x86Vcpu, x86Vm } from './hypervisor/extension.js';
import { MPTABLE_MAX_VCPUS } from './platform/mptable.js';
import type { AcpiTables } from '../../core/acpi/tables.js';
import { ACPI_START } from './platform/acpi.js';
import { vcpuFaultReport } from './cpu/fault-report.js';

/** What an X86Machine is built from: the VM, its memory and devices, boot files, and hooks. */
export interface X86MachineDeps {
  config: VmConfig;
  memory: GuestMemory;
  vm: Vm;
  devices: DeviceRegistry;
  cmdline: KernelCmdline;
  lifecycle: VmLifecycle;
  logger: Logger;
  /** Looked up once the vCPUs exist (a KVM runner is built from the VM's vCPUs). */
  runner: () => VcpuRunner;
  /** Boot files, already resolved to paths. */
  boot: { kernel: string; initramfs?: string; protocol: BootProtocol };
  /** How often to look for a guest that halted every vCPU with interrupts off (ms; 0 = never). */
  haltPollMs?: number;
  /** The VM's ACPI tables (acpi plugin), built at ACPI_START when the kernel is loaded; none: MP table only. */
  acpi?: AcpiTables;
  /** Called with each vCPU once created (the x86 plugin adds it to the VM's StateRegistry). */
  vcpuCreated?: (vcpu: Vcpu) => void;
  /** The boot protocol a loaded machine state says the guest booted with (MachineSnapshot.restoredBoot). */
  restoredBoot?: () => BootProtocol | undefined;
  /** Presses the ACPI power button; false when there is none or the guest does not listen. */
  powerButton?: () => boolean;
}

type State = 'created' | 'starting' | 'running' | 'paused' | 'stopping' | 'stopped';

/** Every vCPU is halted with interrupts off, or never started: nothing can wake the guest. */
export function isPoweredOffByHalt(states: readonly VcpuRunState[]): boolean {
  return (
    states.length > 0 &&
    states.some((s) => s.mpState === 'halted') &&
    states.every((s) => (s.mpState === 'halted' && !s.interruptsEnabled) || s.mpState === 'uninitialized')
  );
}

/** What a non-I/O exit means for the VM; undefined = keep running. */
export function stopReasonForExit(exit: VcpuExit): StopReason | undefined {
  switch (exit.kind) {
    case 'shutdown':
      return { kind: 'triple-fault' };
    case 'hlt':
      return { kind: 'poweroff' }; // only reaches userspace without an in-kernel irqchip
    case 'system-event':
      if (exit.type === 'shutdown') return { kind: 'poweroff' };
      if (exit.type === 'reset') return { kind: 'reset' };
      return {
        kind: 'error',
        error: new X86BootError('Io', `guest system event ${exit.type} (${exit.raw})`, { raw: exit.raw }),
      };
    case 'internal-error':
      return {
        kind: 'error',
        error: new X86BootError('Io', `KVM internal error, suberror ${exit.suberror}`, { suberror: exit.suberror }),
      };
    case 'fail-entry':
      return {
        kind: 'error',
        error: new X86BootError('Io', `KVM could not enter the guest (hardware reason 0x${exit.reason.toString(16)})`, {
          reason: exit.reason,
        }),
      };
    case 'unknown':
      return {
        kind: 'error',
        error: new X86BootError('Io', `unknown vCPU exit ${exit.reason}`, { reason: exit.reason }),
      };
    default:
      return undefined;
  }
}

/**
 * The x86_64 machine: sets the VM's x86 platform addresses (TSS, identity map), loads
 * Linux (bzImage or PVH), sets up every vCPU, activates the devices and runs the vCPUs.
 * The hypervisor backend owns the memory slots and the in-kernel irqchip and PIT (the kvm
 * plugin makes them with the VM). It turns guest power events into a StopReason:
 *  - triple fault (KVM shutdown exit) -> 'triple-fault';
 *  - i8042 reset and other 'guest-request' events from devices -> as requested;
 *  - Linux poweroff without ACPI (every vCPU halted with interrupts off, seen through
 *    the runner's optional vcpuStates()) -> 'poweroff'.
 * The machine always ends on these; with machine.onReset 'restart' the host (runVm)
 * assembles a fresh VM after a 'reset' (a KVM VM cannot be reset in place cleanly:
 * vCPUs cannot be destroyed and a worker runner cannot start twice).
 */
export class X86Machine implements Machine {
  readonly stopped: Promise<StopReason>;
  private resolveStopped!: (r: StopReason) => void;
  private state: State = 'created';
  private vcpus: Vcpu[] = [];
  private runner?: VcpuRunner;
  private haltTimer?: NodeJS.Timeout;
  private haltHits = 0;
  private polling = false;
  /** Halt-watch ticks that asked the vCPUs (kicking them) and ticks skipped because they were active. */
  haltPolls = 0;
  haltPollsSkipped = 0;
  private stopping?: Promise<void>;
  /** The last boot plan (entry point, boot structures), for diagnostics and tests. */
  plan?: BootPlan;

  constructor(private readonly d: X86MachineDeps) {
    this.stopped = new Promise((r) => {
      this.resolveStopped = r;
    });
  }

  /**
   * Creates the vCPUs without loading the kernel (see Machine.prepareRestore): the caller loads a saved state
   * into the VM (vCPUs, irqchip, devices, this machine's MachineSnapshot), then start() runs it.
   */
  prepareRestore(): void {
    if (this.state !== 'created' || this.vcpus.length > 0)
      throw new X86BootError('State', `the machine cannot be restored into: it is ${this.state}`, {
        state: this.state,
      });
    this.createVcpus();
    // CPUID first: KVM refuses special registers whose CR4 bits (OSXSAVE, ...) the vCPU's CPUID does not offer.
    // A saved state does not carry CPUID; this host's (as at boot) is what the guest saw.
    const supported = x86Vm(this.d.vm).supportedCpuid();
    for (const v of this.vcpus) x86Vcpu(v).setCpuid(vcpuCpuid(supported, v.index, this.vcpus.length));
    // their threads start now: a migration's destination prepares before the source stops, so start() (inside
    // the downtime) only hands each thread its vCPU
    this.runner = this.d.runner();
    this.runner.prewarm?.(this.vcpus.length);
  }

  /** The configured vCPU count, refused when the host's KVM or the MP table allow fewer. */
  private vcpuCount(): number {
    const count = this.d.config.machine.vcpus;
    const max = Math.min(this.d.vm.capabilities.maxVcpus, MPTABLE_MAX_VCPUS);
    if (count > max) {
      throw new X86BootError('TooManyVcpus', `${count} vCPUs asked; this host's KVM and the MP table allow ${max}`, {
        vcpus: count,
        max,
      });
    }
    return count;
  }

  private createVcpus(): void {
    const { vm } = this.d;
    const count = this.vcpuCount();
    // The hypervisor backend owns the memory slots and the in-kernel irqchip + PIT (kvm: made with the VM).
    const x86 = x86Vm(vm);
    x86.setIdentityMapAddress(X86Layout.KVM_IDENTITY_MAP);
    x86.setTssAddress(X86Layout.KVM_TSS);
    for (let i = 0; i < count; i++) {
      this.vcpus.push(vm.createVcpu(i));
      this.d.vcpuCreated?.(this.vcpus[i]!);
    }
  }

  async start(): Promise<void> {
    if (this.state !== 'created')
      throw new X86BootError('Io', `the machine cannot start: it is ${this.state}`, { state: this.state });
    const restoring = this.vcpus.length > 0;
    if (restoring && !this.d.restoredBoot?.())
      throw new X86BootError('State', 'prepareRestore() ran but no booted machine state was loaded', {});
    this.state = 'starting';
    const { logger } = this.d;
    try {
      // The vCPU threads load their code while the kernel is read; startRunner hands them their vCPUs.
      this.runner ??= this.d.runner(); // prepareRestore made it (and its threads) already
      this.runner.prewarm?.(restoring ? this.vcpus.length : this.d.config.machine.vcpus);
      if (restoring) {
        logger.info({ vcpus: this.vcpus.length, protocol: this.d.restoredBoot?.() }, 'resuming a restored guest');
      } else {
        this.vcpuCount();
        await this.loadKernel();
        this.createVcpus();
        this.configureVcpus();
      }

      for (const dev of this.d.devices.all()) await dev.activate?.();
      this.d.lifecycle.on('guest-request', this.onGuestRequest);
      await this.startRunner();
      this.state = 'running';
      this.d.lifecycle.state = 'started';
      this.d.lifecycle.emit('started');
      this.startHaltWatch();
    } catch (err) {
      logger.error({ err }, 'the machine failed to start');
      await this.stop({ kind: 'error', error: err });
      throw err;
    }
  }

  private async loadKernel(): Promise<void> {
    // the files are open only while their bytes are read into guest memory
    this.plan = withBootFiles(this.d.boot, (kernel, initramfs) => this.load(kernel, initramfs));
    markStartup('kernel loaded');
    this.d.logger.info(
      {
        protocol: this.plan.protocol,
        entry: `0x${this.plan.entry.toString(16)}`,
        vcpus: this.d.config.machine.vcpus,
        acpi: this.plan.rsdp !== undefined,
      },
      'kernel loaded',
    );
  }

  private load(kernel: BootImage, initramfs: BootImage | undefined): BootPlan {
    const leaf1 = findCpuid(x86Vm(this.d.vm).supportedCpuid(), 1);
    return loadLinux(this.d.memory, {
      kernel,
      initramfs,
      cmdline: this.d.cmdline.toString(),
      protocol: this.d.boot.protocol,
      vcpus: this.d.config.machine.vcpus,
      cpuSignature: leaf1?.eax,
      cpuFeatures: leaf1?.edx,
      acpi: this.d.acpi?.build(ACPI_START),
    });
  }

  private configureVcpus(): void {
    const supportedCpuid = x86Vm(this.d.vm).supportedCpuid();
    for (const v of this.vcpus) configureVcpu(v, { vcpuCount: this.vcpus.length, supportedCpuid, plan: this.plan! });
  }

  private async startRunner(): Promise<void> {
    const runner = this.runner ?? this.d.runner();
    this.runner = runner;
    runner.setExitHandler?.((index, exit) => {
      const reason = stopReasonForExit(exit);
      if (!reason) return 'continue';
      this.d.logger.info({ vcpu: index, exit: exit.kind, reason: reason.kind }, 'guest stop event');
      // a triple fault is a guest bug or ours: keep the faulting vCPU's registers for whoever reads the log
      const v = this.vcpus[index];
      if (reason.kind === 'triple-fault' && v)
        this.d.logger.warn({ vcpu: index, regs: vcpuFaultReport(v) }, 'triple fault: the vCPU registers');
      setImmediate(() => this.d.lifecycle.emit('guest-request', reason));
      return 'stop';
    });
    await runner.start();
  }

  private readonly onGuestRequest = (reason: StopReason): void => {
    if (this.state !== 'running' && this.state !== 'paused') return;
    void this.stop(reason);
  };

  /**
   * Polls the runner (when it can tell) for Linux's no-ACPI poweroff: all vCPUs halted, interrupts off.
   * Asking costs each running vCPU a kick, so a poll is skipped while the runner's activity counters
   * show exits since the last tick (a vCPU that exits is not halted for good): a busy boot is never
   * kicked, an idle or powered-off guest is asked once a tick.
   */
  private startHaltWatch(): void {
    const ms = this.d.haltPollMs ?? 500;
    const runner = this.runner;
    if (!ms || !runner?.vcpuStates) {
      this.d.logger.debug(
        'runner cannot report vCPU states: a guest poweroff without ACPI will not end the VM (use reboot)',
      );
      return;
    }
    this.haltHits = 0;
    let seen: number[] | undefined;
    this.haltTimer = setInterval(() => {
      if (this.polling || this.state !== 'running') return;
      const now = runner.activity?.();
      // the first tick only takes the baseline
      const moved = now !== undefined && (seen === undefined || now.some((n, i) => n !== seen![i]));
      seen = now;
      if (moved) {
        this.haltHits = 0;
        this.haltPollsSkipped++;
        return;
      }
      this.polling = true;
      this.haltPolls++;
      runner.vcpuStates!()
        .then(
          (states) => {
            this.haltHits = isPoweredOffByHalt(states) ? this.haltHits + 1 : 0;
            // Two polls in a row: a guest in this state cannot leave it (no interrupt can wake it).
            if (this.haltHits >= 2 && this.state === 'running') {
              this.d.logger.info('every vCPU halted with interrupts off: guest powered off');
              this.d.lifecycle.emit('guest-request', { kind: 'poweroff' });
            }
          },
          (err) => this.d.logger.debug({ err }, 'vcpuStates failed'),
        )
        .finally(() => {
          this.polling = false;
        });
    }, ms);
    this.haltTimer.unref?.();
  }

  private async logVcpuStates(): Promise<void> {
    const runner = this.runner;
    if (!runner?.vcpuStates) return;
    let timer: NodeJS.Timeout | undefined;
    try {
      const states = await Promise.race([
        runner.vcpuStates(),
        new Promise<undefined>((r) => {
          timer = setTimeout(() => r(undefined), 1000);
        }),
      ]);
      if (!states) return;
      this.d.logger.info(
        {
          vcpus: states.map((st) => ({
            vcpu: st.index,
            mpState: st.mpState,
            if: st.interruptsEnabled,
            rip: st.rip === undefined ? undefined : `0x${st.rip.toString(16)}`,
          })),
        },
        'vCPU states when stopped',
      );
    } catch (err) {
      this.d.logger.debug({ err }, 'vCPU states unavailable at stop');
    } finally {
      clearTimeout(timer);
    }
  }

  private stopHaltWatch(): void {
    if (this.haltTimer) clearInterval(this.haltTimer);
    this.haltTimer = undefined;
  }

  /** Presses the ACPI power button while the guest runs (or is paused); see Machine.powerButton. */
  powerButton(): boolean {
    if (this.state !== 'running' && this.state !== 'paused') return false;
    return this.d.powerButton?.() ?? false;
  }

  /** The parts the arch-neutral steps (core/machine-steps.ts) act on. */
  private get parts(): MachineParts {
    return { runner: this.runner, devices: this.d.devices, lifecycle: this.d.lifecycle, logger: this.d.logger };
  }

  async pause(): Promise<void> {
    if (this.state !== 'running') return;
    await pauseParts(this.parts);
    this.state = 'paused';
  }

  async resume(): Promise<void> {
    if (this.state !== 'paused') return;
    await resumeParts(this.parts);
    this.state = 'running';
  }

  /** Stops the vCPUs, destroys the devices and resolves `stopped`; idempotent. */
  stop(reason: StopReason): Promise<void> {
    this.stopping ??= this.doStop(reason);
    return this.stopping;
  }

  private async doStop(reason: StopReason): Promise<void> {
    const wasRunning = this.state === 'running';
    this.state = 'stopping';
    this.stopHaltWatch();
    this.d.lifecycle.off('guest-request', this.onGuestRequest);
    // Stopped from outside (signal, API, timeout): say where the guest was, e.g. a guest stuck in a loop.
    if (wasRunning && (reason.kind === 'signal' || reason.kind === 'api')) await this.logVcpuStates();
    await teardownParts(this.parts, reason);
    this.state = 'stopped';
    this.resolveStopped(reason);
  }
}
