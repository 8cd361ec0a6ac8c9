import 'reflect-metadata';
import { inject, injectable } from 'tsyringe';
import type { DeviceRegistry } from '../../core/device/device.js';
import type { EventFdFactory } from '../../core/events/event-loop.js';
import type { Interrupts } from '../../core/interrupts/interrupts.js';
import type { Logger } from '../../core/logger.js';
import type { PciBus } from '../../core/pci/bus.js';
import type { PluginContext, PluginModule } from '../../core/plugin/plugin.js';
import { DEVICE_REGISTRY, EVENT_FD_FACTORY, PLUGIN_CONTEXT, PLUGIN_LOGGER, Tokens, VM } from '../../core/tokens.js';
import {
  lazyGuestMemory,
  TransportConfigSchema,
  virtioTransportPlugin,
  type TransportConfig,
} from '../virtio/transport-plugin.js';
import { VirtioPciError } from './errors.js';
import { VirtioPciHost } from './host.js';

/** virtio-pci takes no config (an empty block or none). */
export const VirtioPciConfigSchema = TransportConfigSchema;
/** The (empty) validated config. */
export type VirtioPciConfig = TransportConfig;

/**
 * The virtio-pci transport service of a VM, built by constructor injection. The Vm and GuestMemory
 * are looked up when first needed (their providers may create them later); the DeviceRegistry is
 * used when present.
 */
@injectable()
export class InjectedVirtioPciHost extends VirtioPciHost {
  constructor(
    @inject(Tokens.PciBus.token) pci: PciBus,
    @inject(Tokens.Interrupts.token) interrupts: Interrupts,
    @inject(EVENT_FD_FACTORY) eventFds: EventFdFactory,
    @inject(DEVICE_REGISTRY, { isOptional: true }) devices: DeviceRegistry | undefined,
    @inject(PLUGIN_LOGGER) logger: Logger,
    @inject(PLUGIN_CONTEXT) ctx: PluginContext<VirtioPciConfig>,
  ) {
    super({
      pci,
      interrupts,
      eventFds,
      devices,
      logger,
      vm: () => ctx.optional(VM),
      memory: lazyGuestMemory(
        ctx,
        () => new VirtioPciError('Attach', 'no GuestMemory in this VM (list a machine plugin)', {}),
      ),
    });
  }
}

/**
 * Provides `VirtioTransport` (named 'pci') backed by virtio-pci: one host per VM, published under the
 * multiple VirtioTransport token; device plugins pick it with selectVirtioTransport.
 */
const plugin: PluginModule<TransportConfig> = virtioTransportPlugin(InjectedVirtioPciHost);
export default plugin;
