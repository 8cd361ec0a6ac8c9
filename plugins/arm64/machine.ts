import type { Bus } from '../../core/bus/bus.js';
import type { VmConfig } from '../../core/config/schema.js';
import type { DeviceRegistry } from '../../core/device/device.js';
import { pauseParts, resumeParts, teardownParts, type MachineParts } from '../../core/machine-steps.js';
import type { Vcpu, VcpuExit, VcpuRunner, Vm } from '../../core/hypervisor/hypervisor.js';
import type { StopReason, VmLifecycle } from '../../core/lifecycle.js';
import type { Logger } from '../../core/logger.js';
import type { Machine } from '../../core/machine.js';
import type { GuestMemory } from '../../core/memory/guest-memory.js';
import type { KernelCmdline } from '../../core/platform/resources.js';
import { readBootFile } from '../../core/host/boot-files.js';
import { ARM64_REG, PSTATE } from '../kvm/arm64/abi.js';
import { loadArm64Linux, type Arm64Loaded } from './boot/loader.js';
import { Arm64Error } from './errors.js';
import { arm64Vcpu, arm64Vm } from './hypervisor/extension.js';
import { ARM64_MAX_VCPUS, Arm64Layout } from './layout.js';

/** What an Arm64Machine is built from. */
export interface Arm64MachineDeps {
  config: VmConfig;
  memory: GuestMemory;
  vm: Vm;
  bus?: Bus;
  devices: DeviceRegistry;
  cmdline: KernelCmdline;
  lifecycle: VmLifecycle;
  logger: Logger;
  runner: () => VcpuRunner;
  boot: { kernel: string; initramfs?: string };
}

/** The MPIDR bits a device tree's cpu `reg` carries (Aff3, Aff2, Aff1, Aff0). */
const MPIDR_AFFINITY = 0xff_00ff_ffffn;

/** What a non-MMIO exit means on arm64 (PSCI SYSTEM_OFF / SYSTEM_RESET arrive as system events). */
export function arm64StopReason(exit: VcpuExit): StopReason | undefined {
  const error = (why: string) => ({ kind: 'error' as const, error: new Arm64Error('Setup', why) });
  switch (exit.kind) {
    case 'system-event':
      if (exit.type === 'shutdown') return { kind: 'poweroff' };
      if (exit.type === 'reset') return { kind: 'reset' };
      return error(`guest system event ${exit.type} (${exit.raw})`);
    case 'internal-error':
      return error(`KVM internal error, suberror ${exit.suberror}`);
    case 'fail-entry':
      return error(`KVM could not enter the guest (reason 0x${exit.reason.toString(16)})`);
    case 'shutdown':
      return error('KVM shutdown exit');
    case 'unknown':
      return error(`unknown vCPU exit ${exit.reason}`);
    default:
      return undefined;
  }
}

type State = 'created' | 'starting' | 'running' | 'paused' | 'stopping' | 'stopped';

/**
 * The arm64 machine: loads Linux with a device tree it builds (plugins/arm64/boot/loader.ts), creates and
 * initialises the vCPUs (vCPU 0 at the kernel with x0 = the device tree; the others powered off until the
 * guest's PSCI CPU_ON), initialises the GICv3 the kvm backend created with the VM, and runs them. PSCI
 * SYSTEM_OFF ends the VM as 'poweroff', SYSTEM_RESET as 'reset' (the host restarts or exits per onReset).
 */
export class Arm64Machine implements Machine {
  readonly stopped: Promise<StopReason>;
  private resolveStopped!: (r: StopReason) => void;
  private state: State = 'created';
  private readonly vcpus: Vcpu[] = [];
  private runner?: VcpuRunner;
  private stopping?: Promise<void>;
  /** The last boot (addresses, device tree), for diagnostics and tests. */
  loaded?: Arm64Loaded;

  constructor(private readonly d: Arm64MachineDeps) {
    this.stopped = new Promise((r) => {
      this.resolveStopped = r;
    });
  }

  async start(): Promise<void> {
    if (this.state !== 'created') throw new Arm64Error('Setup', `the machine cannot start: it is ${this.state}`);
    this.state = 'starting';
    try {
      const count = this.d.config.machine.vcpus;
      if (count > ARM64_MAX_VCPUS)
        throw new Arm64Error('InvalidConfig', `${count} vCPUs asked; the arm64 layout holds ${ARM64_MAX_VCPUS}`);
      const kernel = await readBootFile(this.d.boot.kernel, 'kernel');
      const initramfs = this.d.boot.initramfs ? await readBootFile(this.d.boot.initramfs, 'initramfs') : undefined;
      const mpidrs = this.createVcpus(count);
      const uart = this.d.bus?.find('mmio', Arm64Layout.UART)
        ? { base: Arm64Layout.UART, size: Arm64Layout.UART_SIZE, spi: Arm64Layout.SPI_UART }
        : undefined;
      const loaded = loadArm64Linux(this.d.memory, {
        kernel,
        initramfs,
        cmdline: this.d.cmdline.toString(),
        mpidrs,
        uart,
        its: arm64Vm(this.d.vm).hasIts,
      });
      this.loaded = loaded;
      const boot = arm64Vcpu(this.vcpus[0]!);
      boot.setReg(ARM64_REG.pc, loaded.kernel);
      boot.setReg(ARM64_REG.x0, loaded.fdt);
      boot.setReg(ARM64_REG.pstate, BigInt(PSTATE.BOOT));
      this.d.logger.info(
        {
          kernel: `0x${loaded.kernel.toString(16)}`,
          fdt: `0x${loaded.fdt.toString(16)}`,
          vcpus: count,
          virtioMmio: loaded.virtioMmio.length,
        },
        'kernel loaded',
      );
      for (const dev of this.d.devices.all()) await dev.activate?.();
      this.d.lifecycle.on('guest-request', this.onGuestRequest);
      await this.startRunner();
      this.state = 'running';
      this.d.lifecycle.state = 'started';
      this.d.lifecycle.emit('started');
    } catch (err) {
      this.d.logger.error({ err }, 'the machine failed to start');
      await this.stop({ kind: 'error', error: err });
      throw err;
    }
  }

  /** Creates and initialises the vCPUs, then the GIC (after the last vCPU); returns their MPIDR affinities. */
  private createVcpus(count: number): bigint[] {
    const vm = arm64Vm(this.d.vm);
    const target = vm.preferredTarget();
    for (let i = 0; i < count; i++) {
      const v = this.d.vm.createVcpu(i);
      this.vcpus.push(v);
      arm64Vcpu(v).init({ target, powerOff: i > 0 });
    }
    vm.finalizeIrqChip();
    return this.vcpus.map((v) => arm64Vcpu(v).getReg(ARM64_REG.mpidr) & MPIDR_AFFINITY);
  }

  private async startRunner(): Promise<void> {
    const runner = this.d.runner();
    this.runner = runner;
    runner.setExitHandler?.((index, exit) => {
      const reason = arm64StopReason(exit);
      if (!reason) return 'continue';
      this.d.logger.info({ vcpu: index, exit: exit.kind, reason: reason.kind }, 'guest stop event');
      setImmediate(() => this.d.lifecycle.emit('guest-request', reason));
      return 'stop';
    });
    await runner.start();
  }

  private readonly onGuestRequest = (reason: StopReason): void => {
    if (this.state !== 'running' && this.state !== 'paused') return;
    void this.stop(reason);
  };

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
    this.state = 'stopping';
    this.d.lifecycle.off('guest-request', this.onGuestRequest);
    await teardownParts(this.parts, reason);
    this.state = 'stopped';
    this.resolveStopped(reason);
  }
}
