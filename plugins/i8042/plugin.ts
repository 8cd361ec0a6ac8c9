import type { DependencyContainer, InjectionToken } from 'tsyringe';
import { z } from 'zod';
import { GuestRange } from '../../core/address.js';
import type { Disposable } from '../../core/bus/bus.js';
import type { Vm } from '../../core/hypervisor/hypervisor.js';
import type { PluginContext, PluginModule } from '../../core/plugin/plugin.js';
import { Tokens } from '../../core/tokens.js';
import { I8042Controller } from './device.js';
import { I8042Error } from './errors.js';
import { COMMAND_PORT, DATA_PORT } from './registers.js';

export const I8042ConfigSchema = z.strictObject({});
export type I8042Config = z.output<typeof I8042ConfigSchema>;

function resolveOr<T>(c: DependencyContainer, token: InjectionToken<T>, fallback: T): T {
  return c.isRegistered(token, true) ? c.resolve(token) : fallback;
}

/**
 * Registers the i8042 on ports 0x60 and 0x64 with the keyboard on IRQ 1. A CPU
 * reset request becomes lifecycle 'guest-request' {kind:'reset'}; the machine
 * decides (machine.onReset) whether that ends the VMM or restarts the VM.
 */
export function registerI8042(container: DependencyContainer, ctx: PluginContext<I8042Config>): Disposable[] {
  const bus = container.resolve(Tokens.Bus.token);
  const registry = container.resolve(Tokens.DeviceRegistry.token);
  const irqs = container.resolve(Tokens.IrqAllocator.token);
  const lifecycle = resolveOr(container, Tokens.Lifecycle.token, ctx.lifecycle);
  const logger = resolveOr(container, Tokens.Logger.token, ctx.logger).child({ device: ctx.instance });

  const keyboard = container.resolve(Tokens.PlatformLayout.token).legacyIrqs.keyboard;
  if (keyboard === undefined)
    throw new I8042Error('Config', `i8042 '${ctx.instance}': the platform has no legacy keyboard line`, {
      instance: ctx.instance,
    });
  const gsi = irqs.claim(keyboard, ctx.instance);
  let vm: Vm | undefined;
  const device = new I8042Controller({
    id: ctx.instance,
    logger,
    irq: (level) => {
      vm ??= container.resolve(Tokens.Vm.token);
      vm.setIrqLine(gsi, level);
    },
    onResetRequest: () => lifecycle.emit('guest-request', { kind: 'reset' }),
  });

  const disposables: Disposable[] = [];
  try {
    disposables.push(bus.register('pio', GuestRange.of(DATA_PORT, 1), device.dataPort, `${ctx.instance}-data`));
    disposables.push(
      bus.register('pio', GuestRange.of(COMMAND_PORT, 1), device.commandPort, `${ctx.instance}-command`),
    );
    registry.add(device);
  } catch (err) {
    for (const d of disposables) d.dispose();
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
