import 'reflect-metadata';
import { inject, injectable, Lifecycle } from 'tsyringe';
import { z } from 'zod';
import type { Disposable } from '../../core/bus/bus.js';
import type { GuestMemory } from '../../core/memory/guest-memory.js';
import type { PluginContext, PluginMain, PluginModule } from '../../core/plugin/plugin.js';
import { GUEST_MEMORY, VIRTIO_TRANSPORT } from '../../core/tokens.js';
import type { VirtioTransportHost } from '../../core/virtio/transport.js';

/** A virtio transport plugin takes no config (an empty block or none). */
export const TransportConfigSchema = z.strictObject({});
/** The (empty) validated config. */
export type TransportConfig = z.output<typeof TransportConfigSchema>;

/**
 * The VM's GuestMemory, looked up when a device first needs it (the machine plugin may create it after the
 * transport): `missing()` is the error when the VM has none.
 */
export function lazyGuestMemory(ctx: PluginContext<TransportConfig>, missing: () => Error): () => GuestMemory {
  return () => {
    const memory = ctx.optional(GUEST_MEMORY);
    if (!memory) throw missing();
    return memory;
  };
}

/**
 * The PluginModule of a virtio transport (virtio-mmio, virtio-pci): its host class (an injectable service
 * the transport's plugin.ts declares) is built once per VM, published under the multiple VirtioTransport
 * token for device plugins (selectVirtioTransport), and handed by the plugin's root to the VM's teardown,
 * which detaches every device.
 */
export function virtioTransportPlugin(
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tsyringe's constructor<T> takes any arguments
  host: new (...args: any[]) => VirtioTransportHost & Disposable,
  names?: Readonly<Record<string, readonly string[]>>,
): PluginModule<TransportConfig> {
  @injectable()
  class TransportRoot implements PluginMain {
    constructor(@inject(host) private readonly service: Disposable) {}

    attach(): Disposable[] {
      return [this.service];
    }
  }
  return {
    configSchema: TransportConfigSchema,
    ...(names ? { names: () => names } : {}),
    register(container) {
      container.register(host, { useClass: host }, { lifecycle: Lifecycle.ContainerScoped });
      container.register(VIRTIO_TRANSPORT, { useToken: host });
    },
    main: TransportRoot,
  };
}
