import type { DependencyContainer, InjectionToken } from 'tsyringe';
import { GuestRange } from '../../core/address.js';
import type { Disposable } from '../../core/bus/bus.js';
import type { Vm } from '../../core/hypervisor/hypervisor.js';
import type { PluginContext, PluginModule } from '../../core/plugin/plugin.js';
import { Tokens } from '../../core/tokens.js';
import { COM_PORTS, SerialConfigSchema, type SerialConfig } from './config.js';
import { createSerialConsole } from './console/select.js';
import { Uart16550 } from './device.js';
import { SerialError } from './errors.js';
import { SerialMetrics } from './metrics.js';
import { REGISTER_COUNT } from './registers.js';

function resolveOr<T>(c: DependencyContainer, token: InjectionToken<T>, fallback: T): T {
  return c.isRegistered(token, true) ? c.resolve(token) : fallback;
}

/**
 * Registers a 16550A UART on the PIO bus at the configured COM port, claims its
 * ISA interrupt line and drives it through the VM's irqchip (vm.setIrqLine).
 * The console starts reading input when the device activates (or when the VM
 * starts, whichever comes first) and is closed when the VM stops or the plugin
 * is disposed.
 */
export async function registerSerial(
  container: DependencyContainer,
  ctx: PluginContext<SerialConfig>,
): Promise<Disposable[]> {
  const cfg = SerialConfigSchema.parse(ctx.config ?? {});
  const bus = container.resolve(Tokens.Bus.token);
  const registry = container.resolve(Tokens.DeviceRegistry.token);
  const irqs = container.resolve(Tokens.IrqAllocator.token);
  const lifecycle = resolveOr(container, Tokens.Lifecycle.token, ctx.lifecycle);
  const logger = resolveOr(container, Tokens.Logger.token, ctx.logger).child({ device: ctx.instance });

  const port = COM_PORTS[cfg.port];
  const gsi = irqs.claim(cfg.irq ?? port.irq, ctx.instance);
  // The Vm is looked up on first use, so a hypervisor swapped in after registration (tests) is the one driven.
  let vm: Vm | undefined;
  const irq = (level: boolean): void => {
    vm ??= container.resolve(Tokens.Vm.token);
    vm.setIrqLine(gsi, level);
  };

  const metrics = new SerialMetrics();
  const console = await createSerialConsole(cfg.console, {
    baseDir: ctx.baseDir,
    dropped: (n) => {
      metrics.txDropped += n;
    },
    onQuit: () => {
      logger.info('console escape (Ctrl-A x): stopping the VM');
      lifecycle.emit('guest-request', { kind: 'signal', signal: 'console-escape' });
    },
  });
  const device = new Uart16550({ id: ctx.instance, console, irq, rxFifoSize: cfg.rxFifoSize, logger, metrics });

  const disposables: Disposable[] = [];
  try {
    disposables.push(bus.register('pio', GuestRange.of(port.base, REGISTER_COUNT), device, ctx.instance));
    registry.add(device);
  } catch (err) {
    for (const d of disposables) d.dispose();
    device.destroy();
    throw new SerialError(
      'Config',
      `serial '${ctx.instance}' at ${cfg.port}: ${(err as Error).message}`,
      { port: cfg.port, instance: ctx.instance },
      { cause: err },
    );
  }

  const onStarted = (): void => device.activate();
  const onStopped = (): void => device.destroy();
  lifecycle.on('started', onStarted);
  lifecycle.on('stopped', onStopped);
  logger.debug({ port: cfg.port, base: port.base, gsi, console: console.kind }, 'serial registered');

  disposables.push({
    dispose: () => {
      lifecycle.off('started', onStarted);
      lifecycle.off('stopped', onStopped);
      device.destroy();
    },
  });
  return disposables;
}

const plugin: PluginModule<SerialConfig> = {
  configSchema: SerialConfigSchema,
  register: registerSerial,
};
export default plugin;
