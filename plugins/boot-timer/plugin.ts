import 'reflect-metadata';
import { inject, injectable, Lifecycle, type InjectionToken } from 'tsyringe';
import { z } from 'zod';
import { GuestRange } from '../../core/address.js';
import type { Bus, Disposable } from '../../core/bus/bus.js';
import type { DeviceRegistry } from '../../core/device/device.js';
import type { VmLifecycle } from '../../core/lifecycle.js';
import type { Logger } from '../../core/logger.js';
import type { PlatformLayout } from '../../core/platform/layout.js';
import type { PluginMain, PluginModule } from '../../core/plugin/plugin.js';
import { BUS, DEVICE_REGISTRY, LIFECYCLE, PLUGIN_INSTANCE, PLUGIN_LOGGER, Tokens } from '../../core/tokens.js';
import { BootTimer, type BootTimeReporter } from './device.js';
import { BootTimerError } from './errors.js';

/** The boot-timer plugin takes no configuration. */
export const BootTimerConfigSchema = z.strictObject({});
/** The (empty) validated boot-timer config. */
export type BootTimerConfig = z.output<typeof BootTimerConfigSchema>;

/** Token (manifest name 'BootTimer') under which the VM's BootTimeReporter is registered. */
export const BOOT_TIMER: InjectionToken<BootTimeReporter> = Symbol.for('tsvmm.BootTimer');

/**
 * The VM's boot timer device, built by injection once per VM (the BOOT_TIMER registration). Boot time is
 * counted from its creation: during VM assembly, before the kernel is loaded and vCPUs start.
 */
@injectable()
export class InjectedBootTimer extends BootTimer {
  constructor(@inject(PLUGIN_INSTANCE) instance: string, @inject(PLUGIN_LOGGER) logger: Logger) {
    super({ id: instance, logger: logger.child({ device: instance }) });
  }
}

/**
 * Puts the boot timer on the MMIO bus at the PlatformLayout's fixed 'boot-timer' window, adds it to the
 * device registry and records lifecycle 'started', so the report also says how long the guest took once
 * vCPUs ran. Everything is undone by the Disposables attach returns.
 */
@injectable()
export class BootTimerAttachment implements PluginMain {
  constructor(
    @inject(PLUGIN_INSTANCE) private readonly instance: string,
    @inject(BOOT_TIMER) private readonly device: InjectedBootTimer,
    @inject(BUS) private readonly bus: Bus,
    @inject(DEVICE_REGISTRY) private readonly registry: DeviceRegistry,
    @inject(LIFECYCLE) private readonly lifecycle: VmLifecycle,
    @inject(Tokens.PlatformLayout.token) private readonly layout: PlatformLayout,
  ) {}

  attach(): Disposable[] {
    const { instance, device } = this;
    const window = this.layout.fixed['boot-timer'];
    if (!window)
      throw new BootTimerError('Config', `boot-timer '${instance}': the platform has no 'boot-timer' window`, {
        instance,
      });
    const disposables: Disposable[] = [];
    try {
      disposables.push(this.bus.register('mmio', GuestRange.of(window.start, window.size), device, instance));
      disposables.push(this.registry.add(device));
    } catch (err) {
      for (const d of disposables.reverse()) void d.dispose();
      throw new BootTimerError(
        'Config',
        `boot-timer '${instance}': ${(err as Error).message}`,
        { instance },
        { cause: err },
      );
    }
    const onStarted = (): void => device.markStarted();
    this.lifecycle.on('started', onStarted);
    disposables.push({
      dispose: () => {
        this.lifecycle.off('started', onStarted);
        device.removeAllListeners();
      },
    });
    return disposables;
  }
}

const plugin: PluginModule<BootTimerConfig> = {
  configSchema: BootTimerConfigSchema,
  register(container) {
    container.register(BOOT_TIMER, { useClass: InjectedBootTimer }, { lifecycle: Lifecycle.ContainerScoped });
  },
  main: BootTimerAttachment,
};
export default plugin;
