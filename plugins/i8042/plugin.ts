import 'reflect-metadata';
import { inject, injectable } from 'tsyringe';
import { z } from 'zod';
import { GuestRange } from '../../core/address.js';
import type { Bus, Disposable } from '../../core/bus/bus.js';
import type { DeviceRegistry } from '../../core/device/device.js';
import type { Interrupts } from '../../core/interrupts/interrupts.js';
import type { VmLifecycle } from '../../core/lifecycle.js';
import type { Logger } from '../../core/logger.js';
import type { Resources } from '../../core/platform/resources.js';
import type { PluginMain, PluginModule } from '../../core/plugin/plugin.js';
import { BUS, DEVICE_REGISTRY, LIFECYCLE, PLUGIN_INSTANCE, PLUGIN_LOGGER, Tokens } from '../../core/tokens.js';
import { I8042Controller } from './device.js';
import { I8042Error } from './errors.js';
import { COMMAND_PORT, DATA_PORT } from './registers.js';

/** The i8042 plugin takes no settings (an empty, strict object). */
export const I8042ConfigSchema = z.strictObject({});
/** The validated (empty) i8042 config. */
export type I8042Config = z.output<typeof I8042ConfigSchema>;

/**
 * The i8042 on ports 0x60 and 0x64 (reserved through Resources) with the keyboard on the
 * platform's 'keyboard' line (IRQ 1 on x86), a level line from Interrupts. A CPU reset request
 * becomes lifecycle 'guest-request' {kind:'reset'}; the machine decides (machine.onReset) whether
 * that ends the VMM or restarts the VM.
 */
@injectable()
export class I8042Plugin implements PluginMain {
  constructor(
    @inject(PLUGIN_INSTANCE) private readonly instance: string,
    @inject(PLUGIN_LOGGER) private readonly logger: Logger,
    @inject(BUS) private readonly bus: Bus,
    @inject(DEVICE_REGISTRY) private readonly registry: DeviceRegistry,
    @inject(Tokens.Interrupts.token) private readonly interrupts: Interrupts,
    @inject(Tokens.Resources.token) private readonly resources: Resources,
    @inject(LIFECYCLE) private readonly lifecycle: VmLifecycle,
  ) {}

  /** Reserves the ports and line, maps the device and registers it; the Disposables undo it in reverse. */
  attach(): Disposable[] {
    const id = this.instance;
    const disposables: Disposable[] = [];
    try {
      disposables.push(this.resources.reserve('pio', BigInt(DATA_PORT), { owner: `${id}-data` }));
      disposables.push(this.resources.reserve('pio', BigInt(COMMAND_PORT), { owner: `${id}-command` }));
      const line = this.interrupts.legacy({ owner: id, line: 'keyboard', mode: 'level' });
      disposables.push(line);
      const device = new I8042Controller({
        id,
        logger: this.logger.child({ device: id }),
        irq: (level) => line.setLevel(level),
        onResetRequest: () => this.lifecycle.emit('guest-request', { kind: 'reset' }),
      });
      disposables.push(this.bus.register('pio', GuestRange.of(DATA_PORT, 1), device.dataPort, `${id}-data`));
      disposables.push(this.bus.register('pio', GuestRange.of(COMMAND_PORT, 1), device.commandPort, `${id}-command`));
      disposables.push(this.registry.add(device));
    } catch (err) {
      for (const d of disposables.reverse()) void d.dispose();
      throw new I8042Error('Config', `i8042 '${id}': ${(err as Error).message}`, { instance: id }, { cause: err });
    }
    return disposables;
  }
}

const plugin: PluginModule<I8042Config> = {
  configSchema: I8042ConfigSchema,
  main: I8042Plugin,
};
export default plugin;
