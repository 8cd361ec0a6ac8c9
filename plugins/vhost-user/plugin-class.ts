import 'reflect-metadata';
import * as path from 'node:path';
import { inject, injectable, injectAll } from 'tsyringe';
import type { Disposable } from '../../core/bus/bus.js';
import type { EventFdFactory, EventLoop } from '../../core/events/event-loop.js';
import type { Logger } from '../../core/logger.js';
import type { PluginContext, PluginMain } from '../../core/plugin/plugin.js';
import {
  EVENT_FD_FACTORY,
  EVENT_LOOP,
  PLUGIN_CONFIG,
  PLUGIN_CONTEXT,
  PLUGIN_LOGGER,
  VIRTIO_TRANSPORT,
} from '../../core/tokens.js';
import type { VirtioTransportHost } from '../../core/virtio/transport.js';
import { attachVhostUser, type VhostUserAttachSpec } from './attach.js';

/** The config keys attachVhostUser reads from every vhost-user device plugin (see VhostUserCommonConfig). */
export interface VhostUserPluginConfig {
  readonly socket: string;
  readonly reconnectMs: number;
  readonly transport?: string;
}

/** What one kind of vhost-user device adds to the common attach: its config space size and shape. */
export type VhostUserDeviceKind<C> = (
  cfg: C,
  ctx: PluginContext<C>,
) => Pick<VhostUserAttachSpec, 'configSize' | 'describe'>;

/** The constructor of a plugin's injected root class. */
export type VhostUserPluginClass = new (...args: never[]) => PluginMain;

/**
 * The injected root class of a vhost-user device plugin (vhost-user-blk, virtio-fs): one device per plugin
 * instance, connected to the back end at `socket` (relative to the YAML file) and attached to the chosen virtio
 * transport; `kind` gives the device's config space and shape. The plugin's manifest declares `sharedMemory`
 * (the back end maps guest RAM) and requires EventLoop, EventFdFactory and VirtioTransport.
 */
export function vhostUserPlugin<C extends VhostUserPluginConfig>(kind: VhostUserDeviceKind<C>): VhostUserPluginClass {
  @injectable()
  class VhostUserPlugin implements PluginMain {
    constructor(
      @inject(PLUGIN_CONFIG) private readonly cfg: C,
      @inject(PLUGIN_CONTEXT) private readonly ctx: PluginContext<C>,
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
        ...kind(cfg, ctx),
      });
    }
  }
  return VhostUserPlugin;
}
