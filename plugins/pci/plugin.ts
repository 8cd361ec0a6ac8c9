import 'reflect-metadata';
import { inject, injectable, Lifecycle } from 'tsyringe';
import { z } from 'zod';
import type { AcpiTables } from '../../core/acpi/tables.js';
import type { Bus, Disposable } from '../../core/bus/bus.js';
import type { Interrupts } from '../../core/interrupts/interrupts.js';
import type { VmLifecycle } from '../../core/lifecycle.js';
import type { Logger } from '../../core/logger.js';
import type { Resources } from '../../core/platform/resources.js';
import type { PluginMain, PluginModule } from '../../core/plugin/plugin.js';
import { BUS, LIFECYCLE, PLUGIN_CONFIG, PLUGIN_LOGGER, Tokens } from '../../core/tokens.js';
import { pciAcpiContribution, pciWindows } from './acpi.js';
import { DEFAULT_INTX_LINES } from './intx.js';
import { PciRootBus } from './root-bus.js';

/** The pci plugin's settings. */
export const PciConfigSchema = z.strictObject({
  /** Configuration mechanism #1 on ports 0xCF8..0xCFF. */
  ports: z.boolean().default(true),
  /** ECAM for bus 0 (a 1 MiB window from the 32-bit MMIO space, announced in MCFG). */
  ecam: z.boolean().default(true),
  /**
   * The four INTx lines (numbers or the platform's line names), INTA# of slot 0 first; lines that are
   * taken are replaced by free ones. Default: the platform's 'pci-inta'..'pci-intd' lines where it names them.
   */
  intxLines: z
    .array(z.union([z.number().int().min(0), z.string().min(1)]))
    .max(4)
    .default([...DEFAULT_INTX_LINES]),
});
/** The validated config. */
export type PciConfig = z.output<typeof PciConfigSchema>;

/** The root bus of a VM, built by constructor injection (one per VM, published as PciBus). */
@injectable()
export class InjectedPciRootBus extends PciRootBus {
  constructor(
    @inject(BUS) bus: Bus,
    @inject(Tokens.Resources.token) resources: Resources,
    @inject(Tokens.Interrupts.token) interrupts: Interrupts,
    @inject(LIFECYCLE) lifecycle: VmLifecycle,
    @inject(PLUGIN_LOGGER) logger: Logger,
    @inject(PLUGIN_CONFIG) config: PciConfig,
  ) {
    super(
      {
        bus,
        resources,
        interrupts,
        logger,
        running: () => lifecycle.state === 'started' || lifecycle.state === 'paused',
      },
      { ports: config.ports, ecam: config.ecam, intxLines: config.intxLines },
    );
  }
}

/** The plugin's root: the bus joins the VM's teardown; with the acpi plugin the DSDT and MCFG describe it. */
@injectable()
export class PciPlugin implements PluginMain {
  constructor(
    @inject(InjectedPciRootBus) private readonly bus: InjectedPciRootBus,
    @inject(Tokens.Resources.token) private readonly resources: Resources,
    @inject(Tokens.AcpiTables.token, { isOptional: true }) private readonly acpi: AcpiTables | undefined,
    @inject(PLUGIN_CONFIG) private readonly config: PciConfig,
  ) {}

  attach(): Disposable[] {
    const out: Disposable[] = [this.bus];
    if (this.acpi)
      out.push(
        this.acpi.contribute(
          pciAcpiContribution(() => ({
            windows: pciWindows(this.resources),
            intxGsis: this.bus.intx.gsis,
            ecam: this.bus.ecam && { base: this.bus.ecam.start, size: this.bus.ecam.size },
            ports: this.config.ports,
          })),
        ),
      );
    return out;
  }
}

/** Provides `PciBus`: segment 0 with its host bridge; device plugins (virtio-pci) add functions to it. */
const plugin: PluginModule<PciConfig> = {
  configSchema: PciConfigSchema,
  register(container) {
    container.register(InjectedPciRootBus, { useClass: InjectedPciRootBus }, { lifecycle: Lifecycle.ContainerScoped });
    container.register(Tokens.PciBus.token, { useToken: InjectedPciRootBus });
  },
  main: PciPlugin,
};
export default plugin;
