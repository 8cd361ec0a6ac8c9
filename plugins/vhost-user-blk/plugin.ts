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
import type { VirtioTransportHost } from '../../core/virtio/transport.js';
import { VirtioDeviceType } from '../../core/virtio/virtio.js';
import { attachVhostUser } from '../vhost-user/attach.js';
import { VhostUserBlkConfigSchema, type VhostUserBlkConfig } from './config.js';
import { blkDeviceShape, VHOST_BLK_CONFIG_SIZE } from './shape.js';

/**
 * One vhost-user-blk disk per plugin instance: connects to the back end's socket, reads its virtio-blk
 * config space (GET_CONFIG) and features, and attaches the device to the chosen virtio transport; the back
 * end serves the queues from shared guest RAM.
 */
@injectable()
export class VhostUserBlkPlugin implements PluginMain {
  constructor(
    @inject(PLUGIN_CONFIG) private readonly cfg: VhostUserBlkConfig,
    @inject(PLUGIN_CONTEXT) private readonly ctx: PluginContext<VhostUserBlkConfig>,
    @inject(PLUGIN_LOGGER) private readonly logger: Logger,
    @inject(EVENT_LOOP) private readonly loop: EventLoop,
    @inject(EVENT_FD_FACTORY) private readonly eventFds: EventFdFactory,
    @injectAll(VIRTIO_TRANSPORT, { isOptional: true }) private readonly transports: VirtioTransportHost[],
  ) {}

  attach(): Promise<Disposable[]> {
    const { cfg, ctx } = this;
    return attachVhostUser({
      instance: ctx.instance,
      socketPath: path.resolve(ctx.baseDir, cfg.socket),
      transports: this.transports,
      transport: cfg.transport,
      vmTransport: ctx.vm.virtio?.transport,
      loop: this.loop,
      eventFds: this.eventFds,
      logger: this.logger,
      configSize: VHOST_BLK_CONFIG_SIZE,
      reconnectMs: cfg.reconnectMs,
      describe: (backend) => ({
        deviceType: VirtioDeviceType.block,
        ...blkDeviceShape(backend, cfg.numQueues, cfg.queueSize, ctx.instance),
      }),
    });
  }
}

/** The vhost-user-blk plugin: config schema and the injected root class. */
const plugin: PluginModule<VhostUserBlkConfig> = { configSchema: VhostUserBlkConfigSchema, main: VhostUserBlkPlugin };
export default plugin;
