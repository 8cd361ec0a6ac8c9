import 'reflect-metadata';
import { inject, injectable } from 'tsyringe';
import { z } from 'zod';
import { GuestRange } from '../../core/address.js';
import type { Bus, Disposable } from '../../core/bus/bus.js';
import type { DeviceRegistry } from '../../core/device/device.js';
import type { Logger } from '../../core/logger.js';
import type { Resources } from '../../core/platform/resources.js';
import type { PluginMain, PluginModule } from '../../core/plugin/plugin.js';
import { BUS, DEVICE_REGISTRY, PLUGIN_INSTANCE, PLUGIN_LOGGER, Tokens } from '../../core/tokens.js';
import { CmosRtc } from './device.js';
import { RtcError } from './errors.js';
import { INDEX_PORT } from './registers.js';

/** The rtc plugin takes no settings (an empty, strict object). */
export const RtcConfigSchema = z.strictObject({});
/** The validated (empty) rtc config. */
export type RtcConfig = z.output<typeof RtcConfigSchema>;

/**
 * The CMOS RTC on ports 0x70-0x71 (reserved through Resources). It raises no interrupts, so it
 * takes no line (the platform layout keeps IRQ 8 out of allocation on x86).
 */
@injectable()
export class RtcPlugin implements PluginMain {
  constructor(
    @inject(PLUGIN_INSTANCE) private readonly instance: string,
    @inject(PLUGIN_LOGGER) private readonly logger: Logger,
    @inject(BUS) private readonly bus: Bus,
    @inject(DEVICE_REGISTRY) private readonly registry: DeviceRegistry,
    @inject(Tokens.Resources.token) private readonly resources: Resources,
  ) {}

  /** Reserves the ports, maps the device and registers it; the Disposables undo it in reverse. */
  attach(): Disposable[] {
    const id = this.instance;
    const device = new CmosRtc({ id, logger: this.logger.child({ device: id }) });
    const disposables: Disposable[] = [];
    try {
      disposables.push(this.resources.reserve('pio', BigInt(INDEX_PORT), { owner: id, size: 2n }));
      disposables.push(this.bus.register('pio', GuestRange.of(INDEX_PORT, 2), device, id));
      disposables.push(this.registry.add(device));
    } catch (err) {
      for (const d of disposables.reverse()) void d.dispose();
      throw new RtcError('Config', `rtc '${id}': ${(err as Error).message}`, { instance: id }, { cause: err });
    }
    return disposables;
  }
}

const plugin: PluginModule<RtcConfig> = {
  configSchema: RtcConfigSchema,
  main: RtcPlugin,
};
export default plugin;
