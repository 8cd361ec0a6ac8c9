import 'reflect-metadata';
import { inject, injectable, Lifecycle } from 'tsyringe';
import { z } from 'zod';
import type { Disposable } from '../../core/bus/bus.js';
import type { EventFdFactory, EventLoop } from '../../core/events/event-loop.js';
import type { Interrupts } from '../../core/interrupts/interrupts.js';
import type { Logger } from '../../core/logger.js';
import type { GuestMemory } from '../../core/memory/guest-memory.js';
import type { PciBus } from '../../core/pci/bus.js';
import type { PluginContext, PluginMain, PluginModule, PluginProblem } from '../../core/plugin/plugin.js';
import {
  EVENT_FD_FACTORY,
  EVENT_LOOP,
  GUEST_MEMORY,
  PLUGIN_CONFIG,
  PLUGIN_CONTEXT,
  PLUGIN_INSTANCE,
  PLUGIN_LOGGER,
  Tokens,
  VM,
} from '../../core/tokens.js';
import { VfioPciDevice } from './device.js';
import type { VfioKernel } from './kernel.js';
import { NativeVfioKernel } from './native.js';
import { deviceSysfsPath, mapGuestRam, openVfioDevice } from './open.js';
import { VmDeviceMemorySlots } from './slots.js';

/** The plugin's config: the host device (PCI address or sysfs path) and, optionally, the guest slot. */
export const VfioConfigSchema = z.strictObject({
  /** `0000:00:03.0`, `00:03.0` or `/sys/bus/pci/devices/0000:00:03.0`; bound to vfio-pci on the host. */
  device: z.string().min(1),
  /** Guest slot 1..31 on bus 0 (default: the lowest free one). */
  slot: z.number().int().min(1).max(31).optional(),
  /** Map mmappable BAR parts straight into the guest (default true); false traps every BAR access. */
  directBars: z.boolean().default(true),
});
/** The validated config. */
export type VfioConfig = z.output<typeof VfioConfigSchema>;

/** The VFIO kernel interface the plugin uses (NativeVfioKernel unless a test registers its double). */
export const VFIO_KERNEL = Symbol('vfio.VfioKernel');

/**
 * Passes one host PCI function to the guest: opens it through VFIO (container, group, device), maps all
 * guest RAM for its DMA, builds the VfioPciDevice and plugs it into the PciBus (at boot, or while the VM
 * runs: the cloud host's ACPI hotplug announces it). Disposal unplugs it, resets the function, unmaps
 * the DMA and closes the fds.
 */
@injectable()
export class VfioPlugin implements PluginMain {
  constructor(
    @inject(PLUGIN_CONFIG) private readonly config: VfioConfig,
    @inject(PLUGIN_INSTANCE) private readonly instance: string,
    @inject(PLUGIN_LOGGER) private readonly logger: Logger,
    @inject(PLUGIN_CONTEXT) private readonly ctx: PluginContext<VfioConfig>,
    @inject(Tokens.PciBus.token) private readonly pci: PciBus,
    @inject(Tokens.Interrupts.token) private readonly interrupts: Interrupts,
    @inject(EVENT_FD_FACTORY) private readonly eventFds: EventFdFactory,
    @inject(EVENT_LOOP) private readonly loop: EventLoop,
    @inject(GUEST_MEMORY) private readonly memory: GuestMemory,
    @inject(VFIO_KERNEL) private readonly kernel: VfioKernel,
  ) {}

  attach(): Disposable[] {
    const sysfs = deviceSysfsPath(this.config.device);
    const opened = openVfioDevice(this.kernel, sysfs);
    const out: Disposable[] = [opened];
    try {
      out.push(mapGuestRam(opened.container, this.memory));
      const vm = this.config.directBars ? this.ctx.optional(VM) : undefined;
      const device = new VfioPciDevice({
        id: this.instance,
        device: opened.device,
        interrupts: this.interrupts,
        eventFds: this.eventFds,
        loop: this.loop,
        slots: vm ? new VmDeviceMemorySlots(vm) : undefined,
        logger: this.logger,
      });
      out.push({ dispose: () => device.close() });
      out.push(this.pci.add(device, { slot: this.config.slot, name: this.instance }));
      const r = device.config.shadow;
      this.logger.info(
        {
          device: opened.name,
          group: opened.group.group,
          ids: `${r.get(0, 2).toString(16).padStart(4, '0')}:${r.get(2, 2).toString(16).padStart(4, '0')}`,
          bars: device.bars.map((b) => `${b.index}:${b.kind}:0x${b.size.toString(16)}`).join(' '),
          msix: device.config.msix?.vectors ?? 0,
          msi: device.config.msi?.vectors ?? 0,
        },
        'VFIO device attached',
      );
      return out;
    } catch (err) {
      for (const d of out.reverse()) d.dispose();
      throw err;
    }
  }
}

/** The `vfio` plugin: one instance per passed-through PCI function. */
const plugin: PluginModule<VfioConfig> = {
  configSchema: VfioConfigSchema,
  validate(config, vm) {
    const problems: PluginProblem[] = [];
    try {
      deviceSysfsPath(config.device);
    } catch (err) {
      problems.push({ key: ['device'], message: (err as Error).message });
    }
    // as QEMU inhibits ballooning with VFIO: guest RAM is pinned for DMA, pages a balloon gives back would
    // still be the device's target while the guest gets new ones
    for (const b of vm.providers('Balloon'))
      problems.push({
        key: ['device'],
        message: `a passed-through device pins guest RAM for DMA; the balloon '${b}' cannot give memory back: remove one`,
      });
    return problems;
  },
  register(container) {
    if (!container.isRegistered(VFIO_KERNEL, true))
      container.register(VFIO_KERNEL, { useClass: NativeVfioKernel }, { lifecycle: Lifecycle.ContainerScoped });
  },
  main: VfioPlugin,
};
export default plugin;
