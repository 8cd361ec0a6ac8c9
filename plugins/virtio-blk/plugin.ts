import 'reflect-metadata';
import * as path from 'node:path';
import { inject, injectable, injectAll } from 'tsyringe';
import type { DiskBackend, DiskFormat } from '../../core/block/disk.js';
import type { Disposable } from '../../core/bus/bus.js';
import type { EventLoop } from '../../core/events/event-loop.js';
import type { Logger } from '../../core/logger.js';
import type { PluginContext, PluginMain, PluginModule } from '../../core/plugin/plugin.js';
import {
  DISK_FORMAT,
  EVENT_LOOP,
  PLUGIN_CONFIG,
  PLUGIN_CONTEXT,
  PLUGIN_LOGGER,
  VIRTIO_TRANSPORT,
} from '../../core/tokens.js';
import {
  selectVirtioTransport,
  virtioTransportProblems,
  type VirtioTransportHost,
} from '../../core/virtio/transport.js';
import { VirtioBlkConfigSchema, type VirtioBlkConfig } from './config.js';
import { VirtioBlk } from './device.js';
import { openDisk } from './open-disk.js';
import { LateDisk } from './late-disk.js';
import { incomingVm } from '../../core/vmm/incoming.js';

/**
 * One virtio-blk disk per plugin instance: opens the image through the DiskFormat providers
 * (raw-disk, qcow, ...), builds the device and attaches it to the virtio transport its config
 * or the VM's `virtio.transport` names (else the VM's only one). In a live migration's destination built before
 * the source let go (core/vmm/incoming.ts), the image is described now and opened once the source let go of it
 * (./late-disk.ts), before the guest runs. The returned Disposable
 * detaches the device and flushes and closes the disk; the VM's teardown awaits it, so a qcow2
 * image has its reserved clusters released and its header written before runVm returns.
 */
@injectable()
export class VirtioBlkPlugin implements PluginMain {
  private readonly logger: Logger;

  constructor(
    @inject(PLUGIN_CONFIG) private readonly cfg: VirtioBlkConfig,
    @inject(PLUGIN_CONTEXT) private readonly ctx: PluginContext<VirtioBlkConfig>,
    @inject(PLUGIN_LOGGER) logger: Logger,
    @inject(EVENT_LOOP) private readonly loop: EventLoop,
    @injectAll(DISK_FORMAT, { isOptional: true }) private readonly formats: DiskFormat[],
    @injectAll(VIRTIO_TRANSPORT, { isOptional: true }) private readonly transports: VirtioTransportHost[],
  ) {
    this.logger = logger.child({ device: ctx.instance });
  }

  async attach(): Promise<Disposable[]> {
    const { cfg, ctx, logger } = this;
    const transport = selectVirtioTransport(
      this.transports,
      { device: cfg.transport, vmDefault: ctx.vm.virtio?.transport },
      ctx.instance,
    );
    const file = path.resolve(ctx.baseDir, cfg.path);
    const opts = { path: file, readOnly: cfg.readOnly, direct: cfg.direct, allowBacking: cfg.allowBacking };
    // A migration's destination built before the source let go: the image is the source's (and locked) until then
    const incoming = incomingVm(ctx.vm);
    let disk: DiskBackend;
    if (incoming) {
      const late = await LateDisk.describe(this.formats, cfg.format, opts);
      incoming.defer(`disk ${file}`, () => late.open());
      disk = late;
    } else disk = await openDisk(this.formats, cfg.format, opts);
    let device: VirtioBlk;
    try {
      device = new VirtioBlk(
        {
          id: ctx.instance,
          disk,
          readOnly: cfg.readOnly,
          serial: cfg.serial ?? ctx.instance.slice(0, 20),
          numQueues: cfg.numQueues,
          queueSize: cfg.queueSize,
          rateLimiter: cfg.rateLimiter,
        },
        this.loop,
        logger,
      );
    } catch (err) {
      await disk.close();
      throw err;
    }
    let attachment: Disposable;
    try {
      attachment = transport.attachVirtioDevice(device, { name: ctx.instance });
    } catch (err) {
      await device.destroy();
      throw err;
    }
    logger.info(
      { path: file, size: disk.size.toString(), readOnly: device.readOnly, queues: cfg.numQueues },
      'virtio-blk disk attached',
    );
    return [
      {
        dispose: async (): Promise<void> => {
          attachment.dispose();
          await device.destroy().catch((err: unknown) => logger.warn({ err }, 'closing the disk failed'));
        },
      },
    ];
  }
}

/** The virtio-blk plugin: config schema and the injected root class. */
const plugin: PluginModule<VirtioBlkConfig> = {
  configSchema: VirtioBlkConfigSchema,
  main: VirtioBlkPlugin,
  files: (cfg) => [{ key: ['path'], path: cfg.path, what: 'disk image', blockDevice: true, write: !cfg.readOnly }],
  validate: virtioTransportProblems,
};
export default plugin;
