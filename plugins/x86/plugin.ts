import 'reflect-metadata';
import { resolve } from 'node:path';
import { inject, injectable, Lifecycle } from 'tsyringe';
import type { Bus, Disposable } from '../../core/bus/bus.js';
import { GuestRange } from '../../core/address.js';
import type { AcpiTables } from '../../core/acpi/tables.js';
import type { VmConfig } from '../../core/config/schema.js';
import type { DeviceRegistry } from '../../core/device/device.js';
import type { HostFiles } from '../../core/host/host-files.js';
import type { Interrupts } from '../../core/interrupts/interrupts.js';
import type { Vcpu, Vm } from '../../core/hypervisor/hypervisor.js';
import type { Logger } from '../../core/logger.js';
import type { GuestMemory, GuestMemoryFactory } from '../../core/memory/guest-memory.js';
import type { PlatformLayout } from '../../core/platform/layout.js';
import type { KernelCmdline } from '../../core/platform/resources.js';
import type { PluginContext, PluginMain, PluginModule } from '../../core/plugin/plugin.js';
import type { StateRegistry } from '../../core/state/registry.js';
import { VcpuSnapshot } from '../../core/state/vcpu-snapshot.js';
import {
  BUS,
  DEVICE_REGISTRY,
  KERNEL_CMDLINE,
  PLUGIN_CONFIG,
  PLUGIN_CONTEXT,
  PLUGIN_LOGGER,
  Tokens,
  VM,
  VM_CONFIG,
} from '../../core/tokens.js';
import { markStartup } from '../../core/vmm/timings.js';
import { resolveBootFile } from '../../core/host/boot-files.js';
import { x86Problems } from './validate.js';
import { X86ConfigSchema, type X86Config } from './config.js';
import { X86BootError } from './errors.js';
import { X86Machine, type X86MachineDeps } from './machine.js';
import { SCI_IRQ, x86AcpiContribution } from './platform/acpi.js';
import { ramRegions } from './platform/memory-map.js';
import { PM1_BASE, PM1_SIZE, Pm1Registers } from './platform/pm.js';
import { x86PlatformLayout } from './platform/resource-layout.js';
import { MachineSnapshot, x86VcpuStateCheck } from './state.js';

/** The boot files the machine loads, resolved when the plugin attaches. */
type BootFiles = X86MachineDeps['boot'];

/**
 * The x86 platform of one VM, built by constructor injection (one per VM). Its PlatformLayout (resource
 * windows, interrupt lines and routes, fixed windows) exists from construction. attach() resolves the boot
 * files (paths relative to the YAML file, or names a host serves through HostFiles, e.g. `guestkit:*`),
 * creates the guest memory (RAM below MMIO32_START, the rest from 4 GiB), contributes the ACPI tables,
 * registers the machine's snapshot state and serves the PM1 registers; its Disposables undo all of it.
 */
@injectable()
export class X86Platform implements PluginMain {
  /** The arch's facts, registered as PlatformLayout. */
  readonly layout: PlatformLayout;
  private guestMemory?: GuestMemory;
  private files?: BootFiles;
  private built?: X86Machine;
  private machineState?: MachineSnapshot;
  private pm?: Pm1Registers;

  constructor(
    @inject(PLUGIN_CONFIG) private readonly cfg: X86Config,
    @inject(PLUGIN_CONTEXT) private readonly ctx: PluginContext<X86Config>,
    @inject(PLUGIN_LOGGER) private readonly logger: Logger,
    @inject(VM_CONFIG) private readonly vmConfig: VmConfig,
    @inject(Tokens.GuestMemoryFactory.token) private readonly memoryFactory: GuestMemoryFactory,
    @inject(BUS, { isOptional: true }) private readonly bus: Bus | undefined,
    @inject(Tokens.AcpiTables.token, { isOptional: true }) private readonly acpiTables: AcpiTables | undefined,
    @inject(Tokens.StateRegistry.token, { isOptional: true }) private readonly states: StateRegistry | undefined,
    @inject(Tokens.HostFiles.token, { isOptional: true }) private readonly hostFiles: HostFiles | undefined,
    @inject(Tokens.Interrupts.token, { isOptional: true }) private readonly interrupts: Interrupts | undefined,
  ) {
    this.layout = x86PlatformLayout(vmConfig.machine.memory);
  }

  /** The guest memory; only after attach() (the kernel attaches x86 before any plugin ordered after it registers). */
  get memory(): GuestMemory {
    if (!this.guestMemory) throw new Error('x86: guest memory requested before the plugin attached');
    return this.guestMemory;
  }

  /** Resolves the boot files, creates guest memory and wires ACPI, snapshot state and PM1 (see the class). */
  async attach(): Promise<Disposable[]> {
    const boot = this.vmConfig.boot;
    if (!boot) throw new X86BootError('Io', 'the x86 machine needs a boot: section with at least boot.kernel', {});
    const { baseDir } = this.ctx;
    this.files = {
      kernel: await resolveBootFile(boot.kernel, baseDir, this.hostFiles),
      initramfs: boot.initramfs ? await resolveBootFile(boot.initramfs, baseDir, this.hostFiles) : undefined,
      protocol: boot.protocol,
    };
    markStartup('x86: boot files resolved');
    const acpi = this.cfg.acpi ? this.requireAcpi() : undefined;

    const m = this.vmConfig.machine;
    const memory = this.memoryFactory.create({
      // like every path in the YAML file: relative to its folder
      regions: ramRegions(m.memory),
      backend: m.memoryBackend,
      path: m.memoryPath && resolve(baseDir, m.memoryPath),
    });
    this.guestMemory = memory;
    markStartup('x86: guest memory created');

    const disposables: Disposable[] = [{ dispose: () => memory.close() }];
    try {
      const powerButton = this.cfg.powerButton && acpi !== undefined && this.bus !== undefined;
      if (this.cfg.powerButton && !powerButton)
        throw new X86BootError('Config', "x86's powerButton needs ACPI (the acpi plugin and 'acpi: true')", {});
      if (acpi) disposables.push(acpi.contribute(x86AcpiContribution(m.vcpus, { powerButton })));
      // State for snapshots: the machine's own (shape, booted); each vCPU's once created (machineWiring).
      const memoryBytes = memory.regions.reduce((n, r) => n + r.range.length, 0n);
      const machineState = new MachineSnapshot(
        { vcpus: m.vcpus, memoryBytes, acpi: this.cfg.acpi },
        () => this.built?.plan?.protocol,
      );
      this.machineState = machineState;
      if (this.states) disposables.push(this.states.add(machineState, 'machine'));
      // The FADT's PM1a registers: the guest's ACPI poweroff (SLP_EN with \_S5's type) stops the VM.
      if (acpi && this.bus) {
        const sci = powerButton ? this.sciLine() : undefined;
        if (sci) disposables.push(sci);
        const pm = new Pm1Registers(
          () => {
            this.logger.info('guest ACPI poweroff (S5)');
            setImmediate(() => this.ctx.lifecycle.emit('guest-request', { kind: 'poweroff' }));
          },
          (level) => {
            if (level) sci?.trigger();
          },
        );
        if (powerButton) this.pm = pm;
        machineState.pm1 = pm; // a restored guest keeps the events it enabled (its power button)
        disposables.push(this.bus.register('pio', GuestRange.of(PM1_BASE, PM1_SIZE), pm.bus, 'acpi-pm1'));
      }
    } catch (err) {
      for (const d of disposables.reverse()) void d.dispose();
      throw err;
    }
    this.logger.debug(
      { memory: m.memory.toString(), vcpus: m.vcpus, kernel: this.files.kernel },
      'x86 machine registered',
    );
    return disposables;
  }

  /** The SCI's line (IRQ 9, edge as the MADT's override says), for the power button. */
  private sciLine() {
    if (!this.interrupts) throw new X86BootError('Config', "x86's powerButton needs the Interrupts service", {});
    return this.interrupts.legacy({ owner: 'acpi-sci', line: SCI_IRQ, mode: 'edge' });
  }

  /** Presses the fixed power button; false when there is none or the guest has not enabled its event. */
  pressPowerButton(): boolean {
    if (!this.pm) return false;
    const heard = this.pm.pressPowerButton();
    this.logger.info({ heard }, heard ? 'power button pressed' : 'power button pressed, but the guest does not listen');
    return heard;
  }

  /** The VM's machine, built once from `w` (when Machine is first resolved, after every plugin attached). */
  machine(w: X86MachineWiring, runner: X86MachineDeps['runner']): X86Machine {
    if (!this.files) throw new Error('x86: Machine requested before the plugin attached');
    const { states } = this;
    // vCPUs live as long as the VM (and its registry): their entries need no removal.
    const vcpuCreated = (v: Vcpu): void => void states?.add(new VcpuSnapshot(v, x86VcpuStateCheck(v)), 'vcpu');
    this.built ??= new X86Machine({
      config: this.vmConfig,
      memory: this.memory,
      vm: w.vm,
      devices: w.devices,
      cmdline: w.cmdline,
      lifecycle: this.ctx.lifecycle,
      logger: this.logger.child({ module: 'x86' }),
      runner,
      boot: this.files,
      haltPollMs: this.cfg.haltPollMs,
      acpi: this.cfg.acpi ? this.acpiTables : undefined,
      vcpuCreated,
      restoredBoot: () => this.machineState?.restoredBoot,
      powerButton: () => this.pressPowerButton(),
    });
    return this.built;
  }

  /**
   * The acpi plugin's AcpiTables; x86's `acpi` setting (default true) without it is refused with the
   * fix, rather than booting a guest that silently loses its CPUs and virtio-mmio devices.
   */
  private requireAcpi(): AcpiTables {
    if (this.acpiTables) return this.acpiTables;
    throw new X86BootError(
      'Config',
      "ACPI is on (x86 config 'acpi', default true) but no acpi plugin is listed: add '- name: acpi' to plugins " +
        "(Debian's cloud kernel finds its CPUs, IOAPIC and virtio-mmio devices only through ACPI), " +
        "or set 'acpi: false' in x86's config for a guest with the MP table only",
      {},
    );
  }
}

/** What the machine is built from once every plugin attached (Vm is a `uses` token: no ordering). */
@injectable()
export class X86MachineWiring {
  constructor(
    @inject(X86Platform) readonly platform: X86Platform,
    @inject(VM) readonly vm: Vm,
    @inject(DEVICE_REGISTRY) readonly devices: DeviceRegistry,
    @inject(KERNEL_CMDLINE) readonly cmdline: KernelCmdline,
  ) {}
}

/**
 * The x86 machine plugin: PlatformLayout first (device plugins ordered after it find the interrupt lines and
 * MMIO window), GuestMemory once attached, and the Machine built on first request. The VcpuRunner (a `uses`
 * token, one per request) is asked for when the machine starts its vCPUs.
 */
const plugin: PluginModule<X86Config> = {
  configSchema: X86ConfigSchema,
  validate: x86Problems,
  register(container) {
    container.register(X86Platform, { useClass: X86Platform }, { lifecycle: Lifecycle.ContainerScoped });
    container.register(Tokens.PlatformLayout.token, { useFactory: (c) => c.resolve(X86Platform).layout });
    container.register(Tokens.GuestMemory.token, { useFactory: (c) => c.resolve(X86Platform).memory });
    container.register(Tokens.Machine.token, {
      useFactory: (c) => {
        const w = c.resolve(X86MachineWiring);
        return w.platform.machine(w, () => c.resolve(Tokens.VcpuRunner.token));
      },
    });
  },
  main: X86Platform,
};
export default plugin;
