import type { DependencyContainer, InjectionToken } from 'tsyringe';
import { z } from 'zod';
import { GuestRange } from '../../core/address.js';
import type { Disposable } from '../../core/bus/bus.js';
import type { PluginContext, PluginModule } from '../../core/plugin/plugin.js';
import { Tokens } from '../../core/tokens.js';
import { CmosRtc } from './device.js';
import { RtcError } from './errors.js';
import { INDEX_PORT } from './registers.js';

export const RtcConfigSchema = z.strictObject({});
export type RtcConfig = z.output<typeof RtcConfigSchema>;

function resolveOr<T>(c: DependencyContainer, token: InjectionToken<T>, fallback: T): T {
  return c.isRegistered(token, true) ? c.resolve(token) : fallback;
}

/**
 * Registers the CMOS RTC on ports 0x70-0x71. It raises no interrupts, so it
 * claims no line (IRQ 8 stays reserved by the platform allocator).
 */
export function registerRtc(container: DependencyContainer, ctx: PluginContext<RtcConfig>): Disposable[] {
  const bus = container.resolve(Tokens.Bus.token);
  const registry = container.resolve(Tokens.DeviceRegistry.token);
  const logger = resolveOr(container, Tokens.Logger.token, ctx.logger).child({ device: ctx.instance });
  const device = new CmosRtc({ id: ctx.instance, logger });
  const disposables: Disposable[] = [];
  try {
    disposables.push(bus.register('pio', GuestRange.of(INDEX_PORT, 2), device, ctx.instance));
    registry.add(device);
  } catch (err) {
    for (const d of disposables) d.dispose();
    throw new RtcError(
      'Config',
      `rtc '${ctx.instance}': ${(err as Error).message}`,
      { instance: ctx.instance },
      { cause: err },
    );
  }
  return disposables;
}

const plugin: PluginModule<RtcConfig> = {
  configSchema: RtcConfigSchema,
  register: registerRtc,
};
export default plugin;
