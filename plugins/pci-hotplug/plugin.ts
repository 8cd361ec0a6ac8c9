import 'reflect-metadata';
import { inject, injectable, Lifecycle } from 'tsyringe';
import { z } from 'zod';
import { GuestRange } from '../../core/address.js';
import type { AcpiTables } from '../../core/acpi/tables.js';
import type { Bus, Disposable } from '../../core/bus/bus.js';
import type { DeviceRegistry } from '../../core/device/device.js';
import type { Interrupts } from '../../core/interrupts/interrupts.js';
import type { Logger } from '../../core/logger.js';
import type { PciBus } from '../../core/pci/index.js';
import type { Resources } from '../../core/platform/resources.js';
import type { PluginMain, PluginModule } from '../../core/plugin/plugin.js';
import { BUS, DEVICE_REGISTRY, PLUGIN_CONFIG, PLUGIN_INSTANCE, PLUGIN_LOGGER, Tokens } from '../../core/tokens.js';
import { hotplugAml } from './aml.js';
import { HotplugController } from './controller.js';
import { PciHotplugError } from './errors.js';
import { HOTPLUG_WINDOW_SIZE } from './registers.js';

/** The pci-hotplug plugin's config. */
export const PciHotplugConfigSchema = z.strictObject({
  /** ACPI path of the PCI host bridge whose slots become hotpluggable (the pci plugin's device). */
  bridge: z
    .string()
    .regex(/^\\(?:[A-Z_][A-Z0-9_]{0,3}\.)*[A-Z_][A-Z0-9_]{0,3}$/, 'an absolute ACPI path such as \\_SB.PCI0')
    .default('\\_SB.PCI0'),
});
/** The validated pci-hotplug config. */
export type PciHotplugConfig = z.output<typeof PciHotplugConfigSchema>;

/**
 * ACPI PCI hotplug for segment 0: the controller's registers in an MMIO window (Resources), a GED whose edge
 * interrupt (Interrupts) tells the guest to look, and the DSDT methods and slot devices (AcpiTables). It follows
 * the PciBus (onChange) and is the VM's PciHotplug: removeDevice asks it for the guest's eject.
 */
@injectable()
export class PciHotplugPlugin implements PluginMain {
  private ctl?: HotplugController;

  constructor(
    @inject(PLUGIN_CONFIG) private readonly cfg: PciHotplugConfig,
    @inject(PLUGIN_INSTANCE) private readonly id: string,
    @inject(PLUGIN_LOGGER) private readonly logger: Logger,
    @inject(Tokens.PciBus.token) private readonly pci: PciBus,
    @inject(Tokens.AcpiTables.token) private readonly acpi: AcpiTables,
    @inject(BUS) private readonly bus: Bus,
    @inject(Tokens.Resources.token) private readonly resources: Resources,
    @inject(Tokens.Interrupts.token) private readonly interrupts: Interrupts,
    @inject(DEVICE_REGISTRY) private readonly devices: DeviceRegistry,
  ) {}

  /** The controller, once attached (the PciHotplug token resolves to it). */
  get controller(): HotplugController {
    if (!this.ctl) throw new PciHotplugError('Config', 'pci-hotplug: the controller was asked for before it attached');
    return this.ctl;
  }

  /** Allocates the window and the line, maps the registers, follows the bus, contributes the DSDT part. */
  attach(): Disposable[] {
    const { id } = this;
    const out: Disposable[] = [];
    try {
      const window = this.resources.allocate('mmio32', { owner: id, size: BigInt(HOTPLUG_WINDOW_SIZE), align: 16n });
      out.push(window);
      const irq = this.interrupts.legacy({ owner: id, mode: 'edge' });
      out.push(irq);
      const ctl = new HotplugController({
        attachments: () => this.pci.attachments(),
        notify: () => irq.trigger(),
        logger: this.logger,
      });
      this.ctl = ctl;
      out.push(this.bus.register('mmio', GuestRange.of(window.start, HOTPLUG_WINDOW_SIZE), ctl.bus, id));
      out.push(this.pci.onChange((change) => ctl.changed(change)));
      out.push(this.devices.add({ id, destroy: () => ctl.stop() }));
      const { bridge } = this.cfg;
      out.push(
        this.acpi.contribute({ source: id, dsdt: () => hotplugAml({ base: window.start, gsi: irq.gsi, bridge }) }),
      );
      this.logger.debug({ base: `0x${window.start.toString(16)}`, gsi: irq.gsi, bridge }, 'PCI hotplug controller');
    } catch (err) {
      for (const d of out.reverse()) void d.dispose();
      throw new PciHotplugError('Config', `pci-hotplug '${id}': ${(err as Error).message}`, { id }, { cause: err });
    }
    return out;
  }
}

/** The plugin: one controller per VM, published as PciHotplug. */
const plugin: PluginModule<PciHotplugConfig> = {
  configSchema: PciHotplugConfigSchema,
  register(container) {
    container.register(PciHotplugPlugin, { useClass: PciHotplugPlugin }, { lifecycle: Lifecycle.ContainerScoped });
    container.register(Tokens.PciHotplug.token, { useFactory: (c) => c.resolve(PciHotplugPlugin).controller });
  },
  main: PciHotplugPlugin,
};
export default plugin;
