import 'reflect-metadata';
import * as path from 'node:path';
import { inject, injectable, injectAll } from 'tsyringe';
import type { Disposable } from '../../core/bus/bus.js';
import type { EventLoop } from '../../core/events/event-loop.js';
import type { Logger } from '../../core/logger.js';
import type { PluginContext, PluginMain, PluginModule } from '../../core/plugin/plugin.js';
import { EVENT_LOOP, PLUGIN_CONFIG, PLUGIN_CONTEXT, PLUGIN_LOGGER, VIRTIO_TRANSPORT } from '../../core/tokens.js';
import { selectVirtioTransport, type VirtioTransportHost } from '../../core/virtio/transport.js';
import { VirtioVsockConfigSchema, type VirtioVsockConfig } from './config.js';
import { VirtioVsock } from './device.js';

/**
 * One vsock device per VM: listens on its Unix socket, attaches to the transport its config or the
 * VM names. The Disposable detaches it, closes every connection and removes the socket file.
 */
@injectable()
export class VirtioVsockPlugin implements PluginMain {
  constructor(
    @inject(PLUGIN_CONFIG) private readonly cfg: VirtioVsockConfig,
    @inject(PLUGIN_CONTEXT) private readonly ctx: PluginContext<VirtioVsockConfig>,
    @inject(PLUGIN_LOGGER) private readonly logger: Logger,
    @inject(EVENT_LOOP) private readonly loop: EventLoop,
    @injectAll(VIRTIO_TRANSPORT, { isOptional: true }) private readonly transports: VirtioTransportHost[],
  ) {}

  async attach(): Promise<Disposable[]> {
    const { cfg, ctx } = this;
    const transport = selectVirtioTransport(
      this.transports,
      { device: cfg.transport, vmDefault: ctx.vm.virtio?.transport },
      ctx.instance,
    );
    const udsPath = path.resolve(ctx.baseDir, cfg.udsPath);
    const device = new VirtioVsock(
      { id: ctx.instance, guestCid: BigInt(cfg.guestCid), udsPath, queueSize: cfg.queueSize },
      this.loop,
      this.logger,
    );
    await device.listen();
    let attachment: Disposable;
    try {
      attachment = transport.attachVirtioDevice(device, { name: ctx.instance });
    } catch (err) {
      await device.destroy();
      throw err;
    }
    this.logger.info({ udsPath, guestCid: cfg.guestCid }, 'virtio-vsock attached');
    return [
      {
        dispose: async (): Promise<void> => {
          attachment.dispose();
          await device.destroy();
        },
      },
    ];
  }
}

/** The virtio-vsock plugin: config schema and the injected root class. */
const plugin: PluginModule<VirtioVsockConfig> = { configSchema: VirtioVsockConfigSchema, main: VirtioVsockPlugin };
export default plugin;
