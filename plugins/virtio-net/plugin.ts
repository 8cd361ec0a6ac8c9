import { randomBytes } from 'node:crypto';
import type { DependencyContainer, InjectionToken } from 'tsyringe';
import type { Disposable } from '../../core/bus/bus.js';
import type { PluginContext, PluginModule } from '../../core/plugin/plugin.js';
import { Tokens } from '../../core/tokens.js';
import { selectVirtioTransport } from '../../core/virtio/transport.js';
import { openBackend } from './backends/open.js';
import { VirtioNetConfigSchema, type VirtioNetConfig } from './config.js';
import { formatMac, parseMac, randomMac } from './config-space.js';
import { VirtioNet } from './device.js';
import { VirtioNetError } from './errors.js';

function resolveOr<T>(c: DependencyContainer, token: InjectionToken<T>, fallback: T): T {
  return c.isRegistered(token, true) ? c.resolve(token) : fallback;
}

/**
 * One virtio-net interface per plugin instance: opens the backend (tap or datagram
 * socket), builds the device and attaches it to the virtio transport. The backend is
 * closed when the VM stops or the plugin is disposed.
 */
export function registerVirtioNet(container: DependencyContainer, ctx: PluginContext<VirtioNetConfig>): Disposable[] {
  const cfg = ctx.config; // already validated by the loader with configSchema
  const logger = resolveOr(container, Tokens.Logger.token, ctx.logger).child({ device: ctx.instance });
  const loop = container.resolve(Tokens.EventLoop.token);
  const transport = selectVirtioTransport(
    container.isRegistered(Tokens.VirtioTransport.token, true)
      ? container.resolveAll(Tokens.VirtioTransport.token)
      : [],
    { device: cfg.transport, vmDefault: ctx.vm.virtio?.transport },
    ctx.instance,
  );
  const mac = cfg.mac ? parseMac(cfg.mac)! : randomMac((n) => randomBytes(n));

  let backend;
  try {
    backend = openBackend(cfg.backend, cfg.queuePairs, ctx.baseDir);
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
      loop,
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

  const close = (): void => device.destroy();
  ctx.lifecycle.on('stopped', close);
  return [
    {
      dispose: () => {
        ctx.lifecycle.off('stopped', close);
        attachment.dispose();
        close();
      },
    },
  ];
}

const plugin: PluginModule<VirtioNetConfig> = {
  configSchema: VirtioNetConfigSchema,
  register: registerVirtioNet,
};
export default plugin;
