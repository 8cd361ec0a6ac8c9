import type { DependencyContainer, InjectionToken } from 'tsyringe';
import { z } from 'zod';
import { GuestRange } from '../../core/address.js';
import type { Disposable } from '../../core/bus/bus.js';
import type { PluginContext, PluginModule } from '../../core/plugin/plugin.js';
import { Tokens } from '../../core/tokens.js';
import { I8042Controller } from './device.js';
import { I8042Error } from './errors.js';
import { COMMAND_PORT, DATA_PORT } from './registers.js';

/** The i8042 plugin takes no settings (an empty, strict object). */
export const I8042ConfigSchema = z.strictObject({});
/** The validated (empty) i8042 config. */
export type I8042Config = z.output<typeof I8042ConfigSchema>;

function resolveOr<T>(c: DependencyContainer, token: InjectionToken<T>, fallback: T): T {
  return c.isRegistered(token, true) ? c.resolve(token) : fallback;
}

/**
 * Registers the i8042 on ports 0x60 and 0x64 (reserved through Resources) with the keyboard
 * on the platform's 'keyboard' line (IRQ 1 on x86), a level line from Interrupts. A CPU
 * reset request becomes lifecycle 'guest-request' {kind:'reset'}; the machine
 * decides (machine.onReset) whether that ends the VMM or restarts the VM.
 */
export function registerI8042(container: DependencyContainer, ctx: PluginContext<I8042Config>): Disposable[] {
  const bus = container.resolve(Tokens.Bus.token);
  const registry = container.resolve(Tokens.DeviceRegistry.token);
  const interrupts = container.resolve(Tokens.Interrupts.token);
  const resources = container.resolve(Tokens.Resources.token);
  const lifecycle = resolveOr(container, Tokens.Lifecycle.token, ctx.lifecycle);
  const logger = resolveOr(container, Tokens.Logger.token, ctx.logger).child({ device: ctx.instance });

  const disposables: Disposable[] = [];
  try {
    disposables.push(resources.reserve('pio', BigInt(DATA_PORT), { owner: `${ctx.instance}-data` }));
    disposables.push(resources.reserve('pio', BigInt(COMMAND_PORT), { owner: `${ctx.instance}-command` }));
    const line = interrupts.legacy({ owner: ctx.instance, line: 'keyboard', mode: 'level' });
    disposables.push(line);
    const device = new I8042Controller({
      id: ctx.instance,
      logger,
      irq: (level) => line.setLevel(level),
      onResetRequest: () => lifecycle.emit('guest-request', { kind: 'reset' }),
    });
    disposables.push(bus.register('pio', GuestRange.of(DATA_PORT, 1), device.dataPort, `${ctx.instance}-data`));
    disposables.push(
      bus.register('pio', GuestRange.of(COMMAND_PORT, 1), device.commandPort, `${ctx.instance}-command`),
    );
    registry.add(device);
  } catch (err) {
    for (const d of disposables.reverse()) d.dispose();
    throw new I8042Error(
      'Config',
      `i8042 '${ctx.instance}': ${(err as Error).message}`,
      { instance: ctx.instance },
      { cause: err },
    );
  }
  return disposables;
}

const plugin: PluginModule<I8042Config> = {
  configSchema: I8042ConfigSchema,
  register: registerI8042,
};
export default plugin;
