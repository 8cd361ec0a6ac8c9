import type { DependencyContainer, InjectionToken } from 'tsyringe';
import { GuestRange } from '../../core/address.js';
import type { Disposable } from '../../core/bus/bus.js';
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
 * Registers a 16550A UART on the PIO bus at the configured COM port: reserves its eight
 * ports and its legacy line (the platform's number for the port, or `irq`) through the
 * Resources and Interrupts services, and drives that line as a level.
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
  const interrupts = container.resolve(Tokens.Interrupts.token);
  const resources = container.resolve(Tokens.Resources.token);
  const lifecycle = resolveOr(container, Tokens.Lifecycle.token, ctx.lifecycle);
  const logger = resolveOr(container, Tokens.Logger.token, ctx.logger).child({ device: ctx.instance });

  const port = COM_PORTS[cfg.port];
  // Everything taken is undone in reverse order if a later step fails.
  const disposables: Disposable[] = [];
  const undo = (): void => {
    for (const d of disposables.reverse()) d.dispose();
  };
  let device: Uart16550 | undefined;
  try {
    disposables.push(
      resources.reserve('pio', BigInt(port.base), { owner: ctx.instance, size: BigInt(REGISTER_COUNT) }),
    );
    const line = interrupts.legacy({ owner: ctx.instance, line: cfg.irq ?? cfg.port.toLowerCase(), mode: 'level' });
    disposables.push(line);
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
    const irq = (level: boolean): void => line.setLevel(level);
    const uart = new Uart16550({ id: ctx.instance, console, irq, rxFifoSize: cfg.rxFifoSize, logger, metrics });
    device = uart;
    disposables.push({ dispose: () => uart.destroy() });
    disposables.push(bus.register('pio', GuestRange.of(port.base, REGISTER_COUNT), uart, ctx.instance));
    registry.add(uart);
    logger.debug({ port: cfg.port, base: port.base, gsi: line.gsi, console: console.kind }, 'serial registered');
  } catch (err) {
    undo();
    if (err instanceof SerialError) throw err; // the console's own errors say what was wrong
    throw new SerialError(
      'Config',
      `serial '${ctx.instance}' at ${cfg.port}: ${(err as Error).message}`,
      { port: cfg.port, instance: ctx.instance },
      { cause: err },
    );
  }

  const uart = device;
  const onStarted = (): void => uart.activate();
  const onStopped = (): void => uart.destroy();
  lifecycle.on('started', onStarted);
  lifecycle.on('stopped', onStopped);
  disposables.push({
    dispose: () => {
      lifecycle.off('started', onStarted);
      lifecycle.off('stopped', onStopped);
    },
  });
  return disposables;
}

const plugin: PluginModule<SerialConfig> = {
  configSchema: SerialConfigSchema,
  register: registerSerial,
};
export default plugin;
