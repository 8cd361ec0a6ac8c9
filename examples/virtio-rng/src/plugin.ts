import {
  EVENT_LOOP,
  PLUGIN_CONFIG,
  PLUGIN_CONTEXT,
  PLUGIN_LOGGER,
  inject,
  injectable,
  injectAll,
  type Disposable,
  type EventLoop,
  type Logger,
  type PluginContext,
  type PluginMain,
  type PluginModule,
} from 'tsvmm';
import { VIRTIO_TRANSPORT, selectVirtioTransport, type VirtioTransportHost } from 'tsvmm/virtio';
import { z } from 'zod';
import { VirtioRng } from './device.js';

/** The plugin's config block (strict: an unknown key is an error pointing at its line). */
export const RngConfigSchema = z.strictObject({
  /** The virtio transport to attach to ('mmio', 'pci'); default: the VM's `virtio.transport`, else its only one. */
  transport: z.string().optional(),
  /** Size of the request queue. */
  queueSize: z
    .number()
    .int()
    .min(2)
    .max(32768)
    .refine((n) => (n & (n - 1)) === 0, 'must be a power of two')
    .default(256),
});
/** The validated config. */
export type RngConfig = z.output<typeof RngConfigSchema>;

/**
 * One virtio-rng device per plugin instance, attached to the transport its config or the VM
 * chooses. Built by constructor injection; everything it sets up is undone by the Disposable
 * attach() returns (detach from the transport, then stop the device).
 */
@injectable()
export class VirtioRngPlugin implements PluginMain {
  constructor(
    @inject(PLUGIN_CONFIG) private readonly cfg: RngConfig,
    @inject(PLUGIN_CONTEXT) private readonly ctx: PluginContext<RngConfig>,
    @inject(PLUGIN_LOGGER) private readonly logger: Logger,
    @inject(EVENT_LOOP) private readonly loop: EventLoop,
    @injectAll(VIRTIO_TRANSPORT) private readonly transports: VirtioTransportHost[],
  ) {}

  attach(): Disposable[] {
    const { cfg, ctx } = this;
    const transport = selectVirtioTransport(
      this.transports,
      { device: cfg.transport, vmDefault: ctx.vm.virtio?.transport },
      ctx.instance,
    );
    const device = new VirtioRng({ id: ctx.instance, queueSize: cfg.queueSize }, this.loop);
    const attachment = transport.attachVirtioDevice(device, { name: ctx.instance });
    this.logger.info({ transport: transport.name, at: attachment.location }, 'virtio-rng attached');
    return [
      {
        dispose: () => {
          attachment.dispose();
          device.destroy();
        },
      },
    ];
  }
}

/** The plugin module tsvmm loads (the manifest's entry): config schema and root class. */
const plugin: PluginModule<RngConfig> = { configSchema: RngConfigSchema, main: VirtioRngPlugin };
export default plugin;
