import 'reflect-metadata';
import { resolve } from 'node:path';
import { inject, injectable, Lifecycle } from 'tsyringe';
import type { Bus, Disposable } from '../../core/bus/bus.js';
import type { VmConfig } from '../../core/config/schema.js';
import type { DeviceRegistry } from '../../core/device/device.js';
import type { HostFiles } from '../../core/host/host-files.js';
import type { Vm } from '../../core/hypervisor/hypervisor.js';
import type { Logger } from '../../core/logger.js';
import type { GuestMemory, GuestMemoryFactory } from '../../core/memory/guest-memory.js';
import type { PlatformLayout } from '../../core/platform/layout.js';
import type { KernelCmdline } from '../../core/platform/resources.js';
import type { PluginContext, PluginMain, PluginModule } from '../../core/plugin/plugin.js';
import {
  BUS,
  DEVICE_REGISTRY,
  KERNEL_CMDLINE,
  PLUGIN_CONTEXT,
  PLUGIN_LOGGER,
  Tokens,
  VM,
  VM_CONFIG,
} from '../../core/tokens.js';
import { resolveBootFile } from '../../core/host/boot-files.js';
import { Arm64ConfigSchema, type Arm64Config } from './config.js';
import { Arm64Error } from './errors.js';
import { arm64PlatformLayout, arm64RamRegions } from './layout.js';
import { Arm64Machine, type Arm64MachineDeps } from './machine.js';

/**
 * The arm64 platform of one VM: its PlatformLayout from construction; attach() resolves the boot files and
 * creates the guest memory (RAM from 1 GiB); the Machine is built on first request.
 */
@injectable()
export class Arm64Platform implements PluginMain {
  /** The arch's facts, registered as PlatformLayout. */
  readonly layout: PlatformLayout = arm64PlatformLayout();
  private guestMemory?: GuestMemory;
  private files?: Arm64MachineDeps['boot'];
  private built?: Arm64Machine;

  constructor(
    @inject(PLUGIN_CONTEXT) private readonly ctx: PluginContext<Arm64Config>,
    @inject(PLUGIN_LOGGER) private readonly logger: Logger,
    @inject(VM_CONFIG) private readonly vmConfig: VmConfig,
    @inject(Tokens.GuestMemoryFactory.token) private readonly memoryFactory: GuestMemoryFactory,
    @inject(Tokens.HostFiles.token, { isOptional: true }) private readonly hostFiles: HostFiles | undefined,
  ) {}

  /** The guest memory; only after attach(). */
  get memory(): GuestMemory {
    if (!this.guestMemory) throw new Error('arm64: guest memory requested before the plugin attached');
    return this.guestMemory;
  }

  /** Resolves the boot files and creates the guest memory; the Disposable closes it. */
  async attach(): Promise<Disposable[]> {
    const boot = this.vmConfig.boot;
    if (!boot) throw new Arm64Error('InvalidConfig', 'the arm64 machine needs a boot: section with boot.kernel');
    const { baseDir } = this.ctx;
    this.files = {
      kernel: await resolveBootFile(boot.kernel, baseDir, this.hostFiles),
      initramfs: boot.initramfs ? await resolveBootFile(boot.initramfs, baseDir, this.hostFiles) : undefined,
    };
    const m = this.vmConfig.machine;
    const memory = this.memoryFactory.create({
      regions: arm64RamRegions(m.memory).map((r) => ({ start: r.start, size: r.size })),
      backend: m.memoryBackend,
      path: m.memoryPath && resolve(baseDir, m.memoryPath),
    });
    this.guestMemory = memory;
    this.logger.debug({ memory: m.memory.toString(), vcpus: m.vcpus }, 'arm64 machine registered');
    return [{ dispose: () => memory.close() }];
  }

  /** The VM's machine, built once (when Machine is first resolved, after every plugin attached). */
  machine(w: Arm64MachineWiring, runner: Arm64MachineDeps['runner']): Arm64Machine {
    if (!this.files) throw new Error('arm64: Machine requested before the plugin attached');
    this.built ??= new Arm64Machine({
      config: this.vmConfig,
      memory: this.memory,
      vm: w.vm,
      bus: w.bus,
      devices: w.devices,
      cmdline: w.cmdline,
      lifecycle: this.ctx.lifecycle,
      logger: this.logger.child({ module: 'arm64' }),
      runner,
      boot: this.files,
    });
    return this.built;
  }
}

/** What the machine is built from once every plugin attached (Vm is a `uses` token: no ordering). */
@injectable()
export class Arm64MachineWiring {
  constructor(
    @inject(Arm64Platform) readonly platform: Arm64Platform,
    @inject(VM) readonly vm: Vm,
    @inject(BUS) readonly bus: Bus,
    @inject(DEVICE_REGISTRY) readonly devices: DeviceRegistry,
    @inject(KERNEL_CMDLINE) readonly cmdline: KernelCmdline,
  ) {}
}

/** The arm64 machine plugin: PlatformLayout first, GuestMemory once attached, the Machine on first request. */
const plugin: PluginModule<Arm64Config> = {
  configSchema: Arm64ConfigSchema,
  register(container) {
    container.register(Arm64Platform, { useClass: Arm64Platform }, { lifecycle: Lifecycle.ContainerScoped });
    container.register(Tokens.PlatformLayout.token, { useFactory: (c) => c.resolve(Arm64Platform).layout });
    container.register(Tokens.GuestMemory.token, { useFactory: (c) => c.resolve(Arm64Platform).memory });
    container.register(Tokens.Machine.token, {
      useFactory: (c) => {
        const w = c.resolve(Arm64MachineWiring);
        return w.platform.machine(w, () => c.resolve(Tokens.VcpuRunner.token));
      },
    });
  },
  main: Arm64Platform,
};
export default plugin;
