import type { DependencyContainer, InjectionToken } from 'tsyringe';
import { z } from 'zod';
import { GuestRange } from '../../core/address.js';
import type { Disposable } from '../../core/bus/bus.js';
import type { PluginContext, PluginModule } from '../../core/plugin/plugin.js';
import { Tokens } from '../../core/tokens.js';
import { CmosRtc } from './device.js';
import { RtcError } from './errors.js';
import { INDEX_PORT } from './registers.js';

/** The rtc plugin takes no settings (an empty, strict object). */
export const RtcConfigSchema = z.strictObject({});
/** The validated (empty) rtc config. */
export type RtcConfig = z.output<typeof RtcConfigSchema>;

function resolveOr<T>(c: DependencyContainer, token: InjectionToken<T>, fallback: T): T {
  return c.isRegistered(token, true) ? c.resolve(token) : fallback;
}

/**
 * Registers the CMOS RTC on ports 0x70-0x71 (reserved through Resources). It raises no
 * interrupts, so it takes no line (the platform layout keeps IRQ 8 out of allocation on x86).
 */
export function registerRtc(container: DependencyContainer, ctx: PluginContext<RtcConfig>): Disposable[] {
  const bus = container.resolve(Tokens.Bus.token);
  const registry = container.resolve(Tokens.DeviceRegistry.token);
  const resources = container.resolve(Tokens.Resources.token);
  const logger = resolveOr(container, Tokens.Logger.token, ctx.logger).child({ device: ctx.instance });
  const device = new CmosRtc({ id: ctx.instance, logger });
  const disposables: Disposable[] = [];
  try {
    disposables.push(resources.reserve('pio', BigInt(INDEX_PORT), { owner: ctx.instance, size: 2n }));
    disposables.push(bus.register('pio', GuestRange.of(INDEX_PORT, 2), device, ctx.instance));
    registry.add(device);
  } catch (err) {
    for (const d of disposables.reverse()) d.dispose();
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
