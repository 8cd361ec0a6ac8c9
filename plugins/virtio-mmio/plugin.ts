import 'reflect-metadata';
import { inject, injectable } from 'tsyringe';
import type { Bus } from '../../core/bus/bus.js';
import type { DeviceRegistry } from '../../core/device/device.js';
import type { EventFdFactory } from '../../core/events/event-loop.js';
import type { Logger } from '../../core/logger.js';
import type { Interrupts } from '../../core/interrupts/interrupts.js';
import type { KernelCmdline, Resources } from '../../core/platform/resources.js';
import type { PluginContext, PluginModule } from '../../core/plugin/plugin.js';
import {
  BUS,
  DEVICE_REGISTRY,
  EVENT_FD_FACTORY,
  KERNEL_CMDLINE,
  PLUGIN_CONTEXT,
  PLUGIN_LOGGER,
  Tokens,
  VM,
} from '../../core/tokens.js';
import {
  lazyGuestMemory,
  TransportConfigSchema,
  virtioTransportPlugin,
  type TransportConfig,
} from '../virtio/transport-plugin.js';
import { VirtioMmioError } from './errors.js';
import { VirtioMmioHost } from './host.js';

/** virtio-mmio takes no config (an empty block or none). */
export const VirtioMmioConfigSchema = TransportConfigSchema;
/** The (empty) validated config. */
export type VirtioMmioConfig = TransportConfig;

/**
 * The virtio-mmio transport service of a VM, built by constructor injection. The Vm and
 * GuestMemory are looked up when first needed (their providers may create them later);
 * the DeviceRegistry and the ACPI tables (LNRO0005 DSDT nodes) are used when present.
 */
@injectable()
export class InjectedVirtioMmioHost extends VirtioMmioHost {
  constructor(
    @inject(BUS) bus: Bus,
    @inject(Tokens.Resources.token) resources: Resources,
    @inject(Tokens.Interrupts.token) interrupts: Interrupts,
    @inject(KERNEL_CMDLINE) cmdline: KernelCmdline,
    @inject(EVENT_FD_FACTORY) eventFds: EventFdFactory,
    @inject(DEVICE_REGISTRY, { isOptional: true }) devices: DeviceRegistry | undefined,
    @inject(PLUGIN_LOGGER) logger: Logger,
    @inject(PLUGIN_CONTEXT) ctx: PluginContext<VirtioMmioConfig>,
  ) {
    super({
      bus,
      resources,
      interrupts,
      cmdline,
      eventFds,
      devices,
      logger,
      vm: () => ctx.optional(VM),
      memory: lazyGuestMemory(
        ctx,
        () => new VirtioMmioError('Attach', 'no GuestMemory in this VM (list a machine plugin)', {}),
      ),
      acpi: ctx.optional(Tokens.AcpiTables.token),
    });
  }
}

/**
 * Provides `VirtioTransport` (named 'mmio') backed by virtio-mmio: one host per VM, published
 * under the multiple VirtioTransport token; device plugins pick it with selectVirtioTransport.
 */
const plugin: PluginModule<TransportConfig> = virtioTransportPlugin(InjectedVirtioMmioHost, {
  VirtioTransport: ['mmio'],
});
export default plugin;
