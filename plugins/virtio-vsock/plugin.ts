import 'reflect-metadata';
import * as path from 'node:path';
import { inject, injectable, injectAll } from 'tsyringe';
import type { Disposable } from '../../core/bus/bus.js';
import type { EventFdFactory, EventLoop } from '../../core/events/event-loop.js';
import type { Logger } from '../../core/logger.js';
import type { PluginContext, PluginMain, PluginModule } from '../../core/plugin/plugin.js';
import {
  EVENT_FD_FACTORY,
  EVENT_LOOP,
  PLUGIN_CONFIG,
  PLUGIN_CONTEXT,
  PLUGIN_LOGGER,
  VIRTIO_TRANSPORT,
} from '../../core/tokens.js';
import { selectVirtioTransport, type VirtioTransportHost } from '../../core/virtio/transport.js';
import { VirtioVsockConfigSchema, type VirtioVsockConfig } from './config.js';
import { VirtioVsock } from './device.js';
import { VhostVsock } from './vhost-device.js';

/**
 * One vsock device per VM, attached to the transport its config or the VM names: with the unix back end it
 * listens on its Unix socket (the Disposable closes every connection and removes the socket file); with vhost
 * the kernel's vhost-vsock serves it (the Disposable stops it and frees the guest CID).
 */
@injectable()
export class VirtioVsockPlugin implements PluginMain {
  constructor(
    @inject(PLUGIN_CONFIG) private readonly cfg: VirtioVsockConfig,
    @inject(PLUGIN_CONTEXT) private readonly ctx: PluginContext<VirtioVsockConfig>,
    @inject(PLUGIN_LOGGER) private readonly logger: Logger,
    @inject(EVENT_LOOP) private readonly loop: EventLoop,
    @inject(EVENT_FD_FACTORY) private readonly eventFds: EventFdFactory,
    @injectAll(VIRTIO_TRANSPORT, { isOptional: true }) private readonly transports: VirtioTransportHost[],
  ) {}

  async attach(): Promise<Disposable[]> {
    const { cfg, ctx } = this;
    const transport = selectVirtioTransport(
      this.transports,
      { device: cfg.transport, vmDefault: ctx.vm.virtio?.transport },
      ctx.instance,
    );
    if (cfg.backend === 'vhost') return this.attachVhost(transport);
    const udsPath = path.resolve(ctx.baseDir, cfg.udsPath!);
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

  /** The kernel's vhost-vsock serves the queues. */
  private attachVhost(transport: VirtioTransportHost): Disposable[] {
    const { cfg, ctx } = this;
    const device = new VhostVsock(
      { id: ctx.instance, guestCid: BigInt(cfg.guestCid), devicePath: cfg.vhostDevice, queueSize: cfg.queueSize },
      this.loop,
      this.eventFds,
      this.logger,
    );
    let attachment: Disposable;
    try {
      attachment = transport.attachVirtioDevice(device, { name: ctx.instance });
    } catch (err) {
      device.destroy();
      throw err;
    }
    this.logger.info({ device: cfg.vhostDevice, guestCid: cfg.guestCid }, 'virtio-vsock attached (vhost-vsock)');
    return [{ dispose: () => (attachment.dispose(), device.destroy()) }];
  }
}

/** The virtio-vsock plugin: config schema and the injected root class. */
const plugin: PluginModule<VirtioVsockConfig> = { configSchema: VirtioVsockConfigSchema, main: VirtioVsockPlugin };
export default plugin;
