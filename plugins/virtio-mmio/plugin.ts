import type { DependencyContainer, InjectionToken } from 'tsyringe';
import { z } from 'zod';
import type { Disposable } from '../../core/bus/bus.js';
import type { PluginContext, PluginModule } from '../../core/plugin/plugin.js';
import { Tokens } from '../../core/tokens.js';
import { VirtioMmioHost } from './host.js';

export const VirtioMmioConfigSchema = z.strictObject({});
export type VirtioMmioConfig = z.output<typeof VirtioMmioConfigSchema>;

function resolveOptional<T>(c: DependencyContainer, token: InjectionToken<T>): T | undefined {
  return c.isRegistered(token, true) ? c.resolve(token) : undefined;
}

/**
 * Provides `VirtioTransport` backed by virtio-mmio. Device plugins (virtio-blk,
 * virtio-net, ...) require "VirtioTransport" and call attachVirtioDevice().
 * The Vm and GuestMemory are looked up when first needed, so their providers may
 * create them lazily.
 */
export function registerVirtioMmio(container: DependencyContainer, ctx: PluginContext<VirtioMmioConfig>): Disposable[] {
  VirtioMmioConfigSchema.parse(ctx.config ?? {});
  const logger = (resolveOptional(container, Tokens.Logger.token) ?? ctx.logger).child({ plugin: 'virtio-mmio' });
  const host = new VirtioMmioHost({
    bus: container.resolve(Tokens.Bus.token),
    resources: container.resolve(Tokens.Resources.token),
    interrupts: container.resolve(Tokens.Interrupts.token),
    cmdline: container.resolve(Tokens.KernelCmdline.token),
    eventFds: container.resolve(Tokens.EventFdFactory.token),
    vm: () => resolveOptional(container, Tokens.Vm.token),
    memory: () => container.resolve(Tokens.GuestMemory.token),
    devices: resolveOptional(container, Tokens.DeviceRegistry.token),
    acpi: resolveOptional(container, Tokens.AcpiTables.token),
    logger,
  });
  container.registerInstance(Tokens.VirtioTransport.token, host);
  const onStopped = (): void => host.dispose();
  ctx.lifecycle.on('stopped', onStopped);
  return [
    {
      dispose: () => {
        ctx.lifecycle.off('stopped', onStopped);
        host.dispose();
      },
    },
  ];
}

const plugin: PluginModule<VirtioMmioConfig> = {
  configSchema: VirtioMmioConfigSchema,
  register: registerVirtioMmio,
};
export default plugin;
