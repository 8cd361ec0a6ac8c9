import 'reflect-metadata';
import { inject, injectable, Lifecycle } from 'tsyringe';
import { z } from 'zod';
import type { Disposable } from '../../core/bus/bus.js';
import type { DeviceRegistry } from '../../core/device/device.js';
import type { EventFdFactory } from '../../core/events/event-loop.js';
import type { Interrupts } from '../../core/interrupts/interrupts.js';
import type { Logger } from '../../core/logger.js';
import type { PciBus } from '../../core/pci/bus.js';
import type { PluginContext, PluginMain, PluginModule } from '../../core/plugin/plugin.js';
import {
  DEVICE_REGISTRY,
  EVENT_FD_FACTORY,
  GUEST_MEMORY,
  PLUGIN_CONTEXT,
  PLUGIN_LOGGER,
  Tokens,
  VIRTIO_TRANSPORT,
  VM,
} from '../../core/tokens.js';
import { VirtioPciError } from './errors.js';
import { VirtioPciHost } from './host.js';

/** virtio-pci takes no config (an empty block or none). */
export const VirtioPciConfigSchema = z.strictObject({});
/** The (empty) validated config. */
export type VirtioPciConfig = z.output<typeof VirtioPciConfigSchema>;

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
      memory: () => {
        const memory = ctx.optional(GUEST_MEMORY);
        if (!memory) throw new VirtioPciError('Attach', 'no GuestMemory in this VM (list a machine plugin)', {});
        return memory;
      },
    });
  }
}

/** The plugin's root: hands the host over to the VM's teardown (unplugging every function). */
@injectable()
export class VirtioPciPlugin implements PluginMain {
  constructor(@inject(InjectedVirtioPciHost) private readonly host: InjectedVirtioPciHost) {}

  attach(): Disposable[] {
    return [this.host];
  }
}

/**
 * Provides `VirtioTransport` (named 'pci') backed by virtio-pci: one host per VM, published under the
 * multiple VirtioTransport token; device plugins pick it with selectVirtioTransport.
 */
const plugin: PluginModule<VirtioPciConfig> = {
  configSchema: VirtioPciConfigSchema,
  register(container) {
    container.register(
      InjectedVirtioPciHost,
      { useClass: InjectedVirtioPciHost },
      { lifecycle: Lifecycle.ContainerScoped },
    );
    container.register(VIRTIO_TRANSPORT, { useToken: InjectedVirtioPciHost });
  },
  main: VirtioPciPlugin,
};
export default plugin;
