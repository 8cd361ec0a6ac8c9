import 'reflect-metadata';
import { inject, injectable, injectAll, Lifecycle } from 'tsyringe';
import type { Disposable } from '../../core/bus/bus.js';
import type { EventLoop } from '../../core/events/event-loop.js';
import type { Logger } from '../../core/logger.js';
import type { PluginContext, PluginMain, PluginModule } from '../../core/plugin/plugin.js';
import {
  EVENT_LOOP,
  PLUGIN_CONFIG,
  PLUGIN_CONTEXT,
  PLUGIN_LOGGER,
  Tokens,
  VIRTIO_TRANSPORT,
} from '../../core/tokens.js';
import { selectVirtioTransport, type VirtioTransportHost } from '../../core/virtio/transport.js';
import { VirtioBalloonConfigSchema, type VirtioBalloonConfig } from './config.js';
import { VirtioBalloon } from './device.js';

/** The balloon built from the instance's config: what the plugin publishes as the VM's `Balloon`. */
@injectable()
export class ConfiguredBalloon extends VirtioBalloon {
  constructor(
    @inject(PLUGIN_CONFIG) cfg: VirtioBalloonConfig,
    @inject(PLUGIN_CONTEXT) ctx: PluginContext<VirtioBalloonConfig>,
    @inject(EVENT_LOOP) loop: EventLoop,
    @inject(PLUGIN_LOGGER) logger: Logger,
  ) {
    super(
      {
        id: ctx.instance,
        memorySize: ctx.vm.machine.memory,
        target: cfg.target,
        queueSize: cfg.queueSize,
        stats: cfg.stats,
        statsIntervalS: cfg.statsIntervalS,
        deflateOnOom: cfg.deflateOnOom,
        freePageReporting: cfg.freePageReporting,
      },
      loop,
      logger,
    );
  }
}

/**
 * Attaches the VM's balloon (the `Balloon` this plugin provides) to the virtio transport its config
 * or the VM names. The returned Disposable detaches it and stops it.
 */
@injectable()
export class VirtioBalloonPlugin implements PluginMain {
  constructor(
    @inject(PLUGIN_CONFIG) private readonly cfg: VirtioBalloonConfig,
    @inject(PLUGIN_CONTEXT) private readonly ctx: PluginContext<VirtioBalloonConfig>,
    @inject(PLUGIN_LOGGER) private readonly logger: Logger,
    @inject(Tokens.Balloon.token) private readonly balloon: VirtioBalloon,
    @injectAll(VIRTIO_TRANSPORT, { isOptional: true }) private readonly transports: VirtioTransportHost[],
  ) {}

  attach(): Disposable[] {
    const { cfg, ctx, balloon } = this;
    const transport = selectVirtioTransport(
      this.transports,
      { device: cfg.transport, vmDefault: ctx.vm.virtio?.transport },
      ctx.instance,
    );
    const attachment = transport.attachVirtioDevice(balloon, { name: ctx.instance });
    balloon.configInterrupt = attachment.interrupt;
    this.logger.info({ at: attachment.location, target: cfg.target.toString() }, 'virtio-balloon attached');
    return [
      {
        dispose: () => {
          balloon.configInterrupt = undefined;
          attachment.dispose();
          balloon.destroy();
        },
      },
    ];
  }
}

/** The virtio-balloon plugin: publishes the balloon as `Balloon`, attaches it in its main class. */
const plugin: PluginModule<VirtioBalloonConfig> = {
  configSchema: VirtioBalloonConfigSchema,
  register(container) {
    container.register(Tokens.Balloon.token, { useClass: ConfiguredBalloon }, { lifecycle: Lifecycle.ContainerScoped });
    return [];
  },
  main: VirtioBalloonPlugin,
};
export default plugin;
