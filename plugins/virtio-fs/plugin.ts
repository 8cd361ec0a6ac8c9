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
import { VirtioFsConfigSchema, type VirtioFsConfig } from './config.js';
import { fsConfigSpace } from './shape.js';

/**
 * One virtio-fs device per plugin instance: the host folder virtiofsd shares appears in the guest under
 * `tag`. Queues: the high-priority queue, then `numRequestQueues` request queues, all served by virtiofsd.
 */
@injectable()
export class VirtioFsPlugin implements PluginMain {
  constructor(
    @inject(PLUGIN_CONFIG) private readonly cfg: VirtioFsConfig,
    @inject(PLUGIN_CONTEXT) private readonly ctx: PluginContext<VirtioFsConfig>,
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
      reconnectMs: cfg.reconnectMs,
      describe: () => ({
        deviceType: VirtioDeviceType.fs,
        queueMaxSizes: Array.from({ length: 1 + cfg.numRequestQueues }, () => cfg.queueSize),
        allowedDeviceFeatures: 0n, // VIRTIO_FS_F_NOTIFICATION needs a notification queue: not offered
        config: fsConfigSpace(cfg.tag, cfg.numRequestQueues),
      }),
    });
  }
}

/** The virtio-fs plugin: config schema and the injected root class. */
const plugin: PluginModule<VirtioFsConfig> = { configSchema: VirtioFsConfigSchema, main: VirtioFsPlugin };
export default plugin;
