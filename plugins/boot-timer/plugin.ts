import type { DependencyContainer, InjectionToken } from 'tsyringe';
import { z } from 'zod';
import { GuestRange } from '../../core/address.js';
import type { Disposable } from '../../core/bus/bus.js';
import type { PluginContext, PluginModule } from '../../core/plugin/plugin.js';
import { Tokens } from '../../core/tokens.js';
import { BootTimer, type BootTimeReporter } from './device.js';
import { BootTimerError } from './errors.js';

/** The boot-timer plugin takes no configuration. */
export const BootTimerConfigSchema = z.strictObject({});
/** The (empty) validated boot-timer config. */
export type BootTimerConfig = z.output<typeof BootTimerConfigSchema>;

/** Token (manifest name 'BootTimer') under which the VM's BootTimeReporter is registered. */
export const BOOT_TIMER: InjectionToken<BootTimeReporter> = Symbol.for('tsvmm.BootTimer');

function resolveOr<T>(c: DependencyContainer, token: InjectionToken<T>, fallback: T): T {
  return c.isRegistered(token, true) ? c.resolve(token) : fallback;
}

/**
 * Registers the boot-time marker on the MMIO bus at the PlatformLayout's fixed 'boot-timer' window. Boot
 * time is counted from this registration (VM assembly); lifecycle 'started' is
 * recorded too so the report also says how long the guest took once vCPUs ran.
 */
export function registerBootTimer(container: DependencyContainer, ctx: PluginContext<BootTimerConfig>): Disposable[] {
  const bus = container.resolve(Tokens.Bus.token);
  const window = container.resolve(Tokens.PlatformLayout.token).fixed['boot-timer'];
  if (!window)
    throw new BootTimerError('Config', `boot-timer '${ctx.instance}': the platform has no 'boot-timer' window`, {
      instance: ctx.instance,
    });
  const registry = container.resolve(Tokens.DeviceRegistry.token);
  const lifecycle = resolveOr(container, Tokens.Lifecycle.token, ctx.lifecycle);
  const logger = resolveOr(container, Tokens.Logger.token, ctx.logger).child({ device: ctx.instance });
  const device = new BootTimer({ id: ctx.instance, logger });

  const disposables: Disposable[] = [];
  try {
    disposables.push(bus.register('mmio', GuestRange.of(window.start, window.size), device, ctx.instance));
    registry.add(device);
  } catch (err) {
    for (const d of disposables) d.dispose();
    throw new BootTimerError(
      'Config',
      `boot-timer '${ctx.instance}': ${(err as Error).message}`,
      { instance: ctx.instance },
      { cause: err },
    );
  }
  container.register(BOOT_TIMER, { useValue: device });
  const onStarted = (): void => device.markStarted();
  lifecycle.on('started', onStarted);
  disposables.push({
    dispose: () => {
      lifecycle.off('started', onStarted);
      device.removeAllListeners();
    },
  });
  return disposables;
}

const plugin: PluginModule<BootTimerConfig> = {
  configSchema: BootTimerConfigSchema,
  register: registerBootTimer,
};
export default plugin;
