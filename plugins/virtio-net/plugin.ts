import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { inject, injectable, injectAll } from 'tsyringe';
import type { Disposable } from '../../core/bus/bus.js';
import type { EventLoop } from '../../core/events/event-loop.js';
import type { Logger } from '../../core/logger.js';
import type { PluginContext, PluginMain, PluginModule } from '../../core/plugin/plugin.js';
import { EVENT_LOOP, PLUGIN_CONFIG, PLUGIN_CONTEXT, PLUGIN_LOGGER, VIRTIO_TRANSPORT } from '../../core/tokens.js';
import {
  selectVirtioTransport,
  virtioTransportProblems,
  type VirtioTransportHost,
} from '../../core/virtio/transport.js';
import { openBackend, opensLate } from './backends/open.js';
import { LateBackend } from './backends/late.js';
import type { NetBackend } from './backends/backend.js';
import { incomingVm } from '../../core/vmm/incoming.js';
import { VirtioNetConfigSchema, type VirtioNetConfig } from './config.js';
import { formatMac, parseMac, randomMac } from './config-space.js';
import { VirtioNet } from './device.js';
import { VirtioNetError } from './errors.js';

/**
 * One virtio-net interface per plugin instance: opens the backend (tap or datagram socket),
 * builds the device and attaches it to the virtio transport its config or the VM's
 * `virtio.transport` names (else the VM's only one). In a live migration's destination built before the source let
 * go (core/vmm/incoming.ts), a named tap is opened once the source let go of it (./backends/late.ts), before the
 * guest runs. The returned Disposable detaches the device and closes the backend when the VM is torn down.
 */
@injectable()
export class VirtioNetPlugin implements PluginMain {
  private readonly logger: Logger;

  constructor(
    @inject(PLUGIN_CONFIG) private readonly cfg: VirtioNetConfig,
    @inject(PLUGIN_CONTEXT) private readonly ctx: PluginContext<VirtioNetConfig>,
    @inject(PLUGIN_LOGGER) logger: Logger,
    @inject(EVENT_LOOP) private readonly loop: EventLoop,
    @injectAll(VIRTIO_TRANSPORT, { isOptional: true }) private readonly transports: VirtioTransportHost[],
  ) {
    this.logger = logger.child({ device: ctx.instance });
  }

  attach(): Disposable[] {
    const { cfg, ctx, logger } = this;
    const transport = selectVirtioTransport(
      this.transports,
      { device: cfg.transport, vmDefault: ctx.vm.virtio?.transport },
      ctx.instance,
    );
    const mac = cfg.mac ? parseMac(cfg.mac)! : randomMac((n) => randomBytes(n));
    let backend: NetBackend;
    const open = (): NetBackend =>
      openBackend(cfg.backend, cfg.queuePairs, ctx.baseDir, this.loop, (why) =>
        logger.warn({ why }, 'network backend stopped'),
      );
    // A migration's destination built before the source let go: a tap is attached to the source until then
    const incoming = incomingVm(ctx.vm);
    try {
      if (incoming && opensLate(cfg.backend)) {
        const late = new LateBackend(
          { kind: 'tap', description: `tap ${cfg.backend.name}`, queuePairs: cfg.queuePairs, vnetHeader: true },
          open,
        );
        incoming.defer(`the tap of ${ctx.instance}`, async () => late.open());
        backend = late;
      } else backend = open();
    } catch (err) {
      throw new VirtioNetError(
        'Backend',
        `${ctx.instance}: cannot open the ${cfg.backend.kind} backend: ${(err as Error).message}`,
        { instance: ctx.instance },
        { cause: err },
      );
    }
    let device: VirtioNet;
    try {
      device = new VirtioNet(
        {
          id: ctx.instance,
          backend,
          mac,
          mtu: cfg.mtu,
          queuePairs: cfg.queuePairs,
          queueSize: cfg.queueSize,
          offloads: cfg.offloads,
          linkUp: cfg.linkUp,
          rateLimiter: cfg.rateLimiter,
        },
        this.loop,
        logger,
      );
    } catch (err) {
      backend.close();
      throw err;
    }
    let attachment;
    try {
      attachment = transport.attachVirtioDevice(device, { name: ctx.instance });
    } catch (err) {
      device.destroy();
      throw err;
    }
    device.bindInterrupt(attachment.interrupt);
    logger.info(
      { backend: backend.description, mac: formatMac(mac), queuePairs: cfg.queuePairs, location: attachment.location },
      'virtio-net attached',
    );
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

/** The virtio-net plugin: config schema and the injected root class. */
const plugin: PluginModule<VirtioNetConfig> = {
  configSchema: VirtioNetConfigSchema,
  main: VirtioNetPlugin,
  validate: virtioTransportProblems,
};
export default plugin;
