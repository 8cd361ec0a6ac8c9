import 'reflect-metadata';
import { inject, injectable } from 'tsyringe';
import { GuestRange } from '../../core/address.js';
import type { Bus, Disposable } from '../../core/bus/bus.js';
import type { DeviceRegistry } from '../../core/device/device.js';
import type { Interrupts } from '../../core/interrupts/interrupts.js';
import type { VmLifecycle } from '../../core/lifecycle.js';
import type { Logger } from '../../core/logger.js';
import type { Resources } from '../../core/platform/resources.js';
import type { PluginContext, PluginMain, PluginModule } from '../../core/plugin/plugin.js';
import {
  BUS,
  DEVICE_REGISTRY,
  LIFECYCLE,
  PLUGIN_CONFIG,
  PLUGIN_CONTEXT,
  PLUGIN_INSTANCE,
  PLUGIN_LOGGER,
  Tokens,
} from '../../core/tokens.js';
import { COM_PORTS, SerialConfigSchema, type SerialConfig } from './config.js';
import { createSerialConsole } from './console/select.js';
import { Uart16550 } from './device.js';
import { SerialError } from './errors.js';
import { SerialMetrics } from './metrics.js';
import { REGISTER_COUNT } from './registers.js';

/**
 * A 16550A UART on the PIO bus at the configured COM port (or on the MMIO bus at `mmio`, for machines
 * without port I/O): reserves its eight ports (bytes) and its
 * legacy line (the platform's number for the port, or `irq`) through the Resources and
 * Interrupts services, and drives that line as a level. The console starts reading input when
 * the device activates (or when the VM starts, whichever comes first) and is closed when the
 * returned Disposables are undone (the VM's teardown; the machine also destroys devices at stop).
 */
@injectable()
export class SerialPlugin implements PluginMain {
  constructor(
    @inject(PLUGIN_CONFIG) private readonly cfg: SerialConfig,
    @inject(PLUGIN_INSTANCE) private readonly instance: string,
    @inject(PLUGIN_LOGGER) private readonly pluginLogger: Logger,
    @inject(PLUGIN_CONTEXT) private readonly ctx: PluginContext<SerialConfig>,
    @inject(BUS) private readonly bus: Bus,
    @inject(DEVICE_REGISTRY) private readonly registry: DeviceRegistry,
    @inject(Tokens.Interrupts.token) private readonly interrupts: Interrupts,
    @inject(Tokens.Resources.token) private readonly resources: Resources,
    @inject(LIFECYCLE) private readonly lifecycle: VmLifecycle,
  ) {}

  /** Reserves, builds and maps the UART; the Disposables (undone in reverse) give everything back. */
  async attach(): Promise<Disposable[]> {
    const { cfg, instance: id, lifecycle } = this;
    const logger = this.pluginLogger.child({ device: id });
    const port = COM_PORTS[cfg.port];
    // Everything taken is undone in reverse order if a later step fails.
    const disposables: Disposable[] = [];
    let device: Uart16550 | undefined;
    try {
      const space = cfg.mmio === undefined ? 'pio' : 'mmio';
      const base = cfg.mmio ?? port.base;
      disposables.push(
        this.resources.reserve(space === 'pio' ? 'pio' : 'mmio32', BigInt(base), {
          owner: id,
          size: BigInt(REGISTER_COUNT),
        }),
      );
      const line = this.interrupts.legacy({ owner: id, line: cfg.irq ?? cfg.port.toLowerCase(), mode: 'level' });
      disposables.push(line);
      const metrics = new SerialMetrics();
      const console = await createSerialConsole(cfg.console, {
        baseDir: this.ctx.baseDir,
        dropped: (n) => {
          metrics.txDropped += n;
        },
        onQuit: () => {
          logger.info('console escape (Ctrl-A x): stopping the VM');
          lifecycle.emit('guest-request', { kind: 'signal', signal: 'console-escape' });
        },
      });
      const irq = (level: boolean): void => line.setLevel(level);
      const uart = new Uart16550({ id, console, irq, rxFifoSize: cfg.rxFifoSize, logger, metrics });
      device = uart;
      // Closes the console should a later step fail (destroy is idempotent).
      disposables.push({ dispose: () => uart.destroy() });
      disposables.push(this.bus.register(space, GuestRange.of(base, REGISTER_COUNT), uart, id));
      disposables.push(this.registry.add(uart));
      logger.debug({ port: cfg.port, space, base, gsi: line.gsi, console: console.kind }, 'serial registered');
    } catch (err) {
      for (const d of disposables.reverse()) void d.dispose();
      if (err instanceof SerialError) throw err; // the console's own errors say what was wrong
      throw new SerialError(
        'Config',
        `serial '${id}' at ${cfg.port}: ${(err as Error).message}`,
        { port: cfg.port, instance: id },
        { cause: err },
      );
    }

    const uart = device;
    const onStarted = (): void => uart.activate();
    lifecycle.on('started', onStarted);
    disposables.push({ dispose: () => void lifecycle.off('started', onStarted) });
    return disposables;
  }
}

const plugin: PluginModule<SerialConfig> = {
  configSchema: SerialConfigSchema,
  main: SerialPlugin,
};
export default plugin;
