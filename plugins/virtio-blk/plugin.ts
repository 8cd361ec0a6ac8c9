import * as path from 'node:path';
import type { DependencyContainer, InjectionToken } from 'tsyringe';
import type { Disposable } from '../../core/bus/bus.js';
import type { PluginContext, PluginModule } from '../../core/plugin/plugin.js';
import { Tokens } from '../../core/tokens.js';
import { selectVirtioTransport } from '../../core/virtio/transport.js';
import { VirtioBlkConfigSchema, type VirtioBlkConfig } from './config.js';
import { VirtioBlk } from './device.js';
import { openDisk } from './open-disk.js';

function resolveOr<T>(c: DependencyContainer, token: InjectionToken<T>, fallback: T): T {
  return c.isRegistered(token, true) ? c.resolve(token) : fallback;
}

/**
 * One virtio-blk disk per plugin instance: opens the image through the DiskFormat
 * providers (raw-disk, qcow, ...), builds the device and attaches it to the virtio
 * transport (virtio-mmio today). The disk is closed when the VM stops or the
 * plugin is disposed.
 */
export async function registerVirtioBlk(
  container: DependencyContainer,
  ctx: PluginContext<VirtioBlkConfig>,
): Promise<Disposable[]> {
  const cfg = VirtioBlkConfigSchema.parse(ctx.config ?? {});
  const logger = resolveOr(container, Tokens.Logger.token, ctx.logger).child({ device: ctx.instance });
  const formats = container.isRegistered(Tokens.DiskFormat.token, true)
    ? container.resolveAll(Tokens.DiskFormat.token)
    : [];
  const loop = container.resolve(Tokens.EventLoop.token);
  const transport = selectVirtioTransport(
    container.isRegistered(Tokens.VirtioTransport.token, true)
      ? container.resolveAll(Tokens.VirtioTransport.token)
      : [],
    { device: cfg.transport, vmDefault: ctx.vm.virtio?.transport },
    ctx.instance,
  );

  const file = path.resolve(ctx.baseDir, cfg.path);
  const disk = await openDisk(formats, cfg.format, {
    path: file,
    readOnly: cfg.readOnly,
    direct: cfg.direct,
    allowBacking: cfg.allowBacking,
  });
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
      loop,
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

  // One close, shared: 'stopped' starts it, dispose waits for it. The VM's dispose awaits a
  // promise a disposable returns, so the disk is flushed and closed (qcow2: reserved clusters
  // released, header written) before runVm returns and before the process may exit.
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= device.destroy().catch((err: unknown) => logger.warn({ err }, 'closing the disk failed'));
    return closing;
  };
  const onStopped = (): void => {
    void close();
  };
  ctx.lifecycle.on('stopped', onStopped);
  return [
    {
      dispose: async (): Promise<void> => {
        ctx.lifecycle.off('stopped', onStopped);
        attachment.dispose();
        await close();
      },
    },
  ];
}

const plugin: PluginModule<VirtioBlkConfig> = {
  configSchema: VirtioBlkConfigSchema,
  register: registerVirtioBlk,
};
export default plugin;
