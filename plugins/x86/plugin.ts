import { resolve } from 'node:path';
import type { DependencyContainer } from 'tsyringe';
import type { Disposable } from '../../core/bus/bus.js';
import { GuestRange } from '../../core/address.js';
import type { PluginContext, PluginModule } from '../../core/plugin/plugin.js';
import { Tokens } from '../../core/tokens.js';
import { markStartup } from '../../core/vmm/timings.js';
import { resolveBootFile } from './boot/files.js';
import { X86ConfigSchema, type X86Config } from './config.js';
import { X86BootError } from './errors.js';
import { X86Machine } from './machine.js';
import { ramRegions } from './platform/memory-map.js';
import { x86PlatformLayout } from './platform/resource-layout.js';
import { PM1_BASE, PM1_SIZE, Pm1Registers } from './platform/pm.js';
import { MachineSnapshot, x86VcpuStateCheck } from './state.js';
import { VcpuSnapshot } from '../../core/state/vcpu-snapshot.js';
import type { Vcpu } from '../../core/hypervisor/hypervisor.js';
import { x86AcpiContribution } from './platform/acpi.js';
import type { AcpiTables } from '../../core/acpi/tables.js';

/**
 * Registers the x86 PlatformLayout (resource windows, interrupt lines and routes, fixed windows), the VM's
 * guest memory (RAM below MMIO32_START, the rest from 4 GiB) and the x86 Machine. Boot files are resolved
 * now (paths relative to the YAML file, or names a host serves through HostFiles, e.g. `guestkit:*`); the
 * Vm and VcpuRunner are looked up when the Machine is built and started.
 */
export async function registerX86(
  container: DependencyContainer,
  ctx: PluginContext<X86Config>,
): Promise<Disposable[]> {
  const cfg = X86ConfigSchema.parse(ctx.config ?? {});
  // First, so device plugins ordered after this one find the interrupt lines and MMIO window.
  const vmConfig = container.resolve(Tokens.VmConfig.token);
  container.register(Tokens.PlatformLayout.token, { useValue: x86PlatformLayout(vmConfig.machine.memory) });
  const boot = vmConfig.boot;
  if (!boot) throw new X86BootError('Io', 'the x86 machine needs a boot: section with at least boot.kernel', {});
  const hostFiles = ctx.optional(Tokens.HostFiles.token); // `guestkit:*` and other schemes a host serves
  const files = {
    kernel: await resolveBootFile(boot.kernel, ctx.baseDir, hostFiles),
    initramfs: boot.initramfs ? await resolveBootFile(boot.initramfs, ctx.baseDir, hostFiles) : undefined,
    protocol: boot.protocol,
  };
  markStartup('x86: boot files resolved');
  const acpi = cfg.acpi ? acpiTables(container) : undefined;

  const m = vmConfig.machine;
  const memory = container.resolve(Tokens.GuestMemoryFactory.token).create({
    // like every path in the YAML file: relative to its folder
    regions: ramRegions(m.memory),
    backend: m.memoryBackend,
    path: m.memoryPath && resolve(ctx.baseDir, m.memoryPath),
  });
  container.register(Tokens.GuestMemory.token, { useValue: memory });
  markStartup('x86: guest memory created');

  const disposables: Disposable[] = [{ dispose: () => memory.close() }];
  if (acpi) disposables.push(acpi.contribute(x86AcpiContribution(m.vcpus)));

  let machine: X86Machine | undefined;
  // State for snapshots: the machine's own (shape, booted) and each vCPU's once created; the kvm plugin
  // adds the irqchip's.
  const states = container.isRegistered(Tokens.StateRegistry.token, true)
    ? container.resolve(Tokens.StateRegistry.token)
    : undefined;
  const memoryBytes = memory.regions.reduce((n, r) => n + r.range.length, 0n);
  const machineState = new MachineSnapshot(
    { vcpus: m.vcpus, memoryBytes, acpi: cfg.acpi },
    () => machine?.plan?.protocol,
  );
  if (states) disposables.push(states.add(machineState, 'machine'));
  // vCPUs live as long as the VM (and its registry): their entries need no removal.
  const vcpuCreated = (v: Vcpu): void => void states?.add(new VcpuSnapshot(v, x86VcpuStateCheck(v)), 'vcpu');
  container.register(Tokens.Machine.token, {
    useFactory: (c) =>
      (machine ??= new X86Machine({
        config: vmConfig,
        memory,
        vm: c.resolve(Tokens.Vm.token),
        devices: c.resolve(Tokens.DeviceRegistry.token),
        cmdline: c.resolve(Tokens.KernelCmdline.token),
        lifecycle: c.resolve(Tokens.Lifecycle.token),
        logger: c.resolve(Tokens.Logger.token).child({ module: 'x86' }),
        runner: () => c.resolve(Tokens.VcpuRunner.token),
        boot: files,
        haltPollMs: cfg.haltPollMs,
        acpi,
        vcpuCreated,
      })),
  });
  // The FADT's PM1a registers: the guest's ACPI poweroff (SLP_EN with \_S5's type) stops the VM.
  if (acpi && container.isRegistered(Tokens.Bus.token, true)) {
    const lifecycle = container.resolve(Tokens.Lifecycle.token);
    const pm = new Pm1Registers(() => {
      ctx.logger.info('guest ACPI poweroff (S5)');
      setImmediate(() => lifecycle.emit('guest-request', { kind: 'poweroff' }));
    });
    disposables.unshift(
      container.resolve(Tokens.Bus.token).register('pio', GuestRange.of(PM1_BASE, PM1_SIZE), pm.bus, 'acpi-pm1'),
    );
  }
  ctx.logger.debug({ memory: m.memory.toString(), vcpus: m.vcpus, kernel: files.kernel }, 'x86 machine registered');
  return disposables;
}

/**
 * The acpi plugin's AcpiTables; x86's `acpi` setting (default true) without it is refused with the
 * fix, rather than booting a guest that silently loses its CPUs and virtio-mmio devices.
 */
function acpiTables(container: DependencyContainer): AcpiTables {
  if (container.isRegistered(Tokens.AcpiTables.token, true)) return container.resolve(Tokens.AcpiTables.token);
  throw new X86BootError(
    'Config',
    "ACPI is on (x86 config 'acpi', default true) but no acpi plugin is listed: add '- name: acpi' to plugins " +
      "(Debian's cloud kernel finds its CPUs, IOAPIC and virtio-mmio devices only through ACPI), " +
      "or set 'acpi: false' in x86's config for a guest with the MP table only",
    {},
  );
}

const plugin: PluginModule<X86Config> = { configSchema: X86ConfigSchema, register: registerX86 };
export default plugin;
