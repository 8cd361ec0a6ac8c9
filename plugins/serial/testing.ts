/**
 * Test doubles for the UART and for legacy-device plugins in general. The
 * platform bed (RecordingVm, RecordingLogger, createLegacyTestBed) is shared by
 * the serial, i8042, rtc and boot-timer tests until core/testing provides one.
 */
import 'reflect-metadata';
import { container as rootContainer, type DependencyContainer } from 'tsyringe';
import type { BusDevice } from '../../core/bus/bus.js';
import { RangeBus } from '../../core/bus/range-bus.js';
import { OrderedDeviceRegistry } from '../../core/device/ordered-registry.js';
import type { Vm } from '../../core/hypervisor/hypervisor.js';
import { VmLifecycle } from '../../core/lifecycle.js';
import type { Logger } from '../../core/logger.js';
import { PlatformResources } from '../../core/platform/platform-resources.js';
import { VmInterrupts } from '../../core/interrupts/vm-interrupts.js';
import { FakeEventFdFactory } from '../../core/testing/manual-event-loop.js';
import { testPlatformLayout } from '../../core/testing/test-layout.js';
import type { PluginInstanceInfo } from '../../core/plugin/instance.js';
import { Tokens } from '../../core/tokens.js';
import { VmConfigSchema } from '../../core/config/schema.js';
import type { SerialConsole, SerialRxPort } from './console/console.js';
import { Uart16550 } from './device.js';

/** An interrupt line that records every level it is driven to. */
export class RecordingIrqLine {
  readonly levels: boolean[] = [];
  level = false;
  risingEdges = 0;
  readonly line = (level: boolean): void => {
    if (level && !this.level) this.risingEdges++;
    this.level = level;
    this.levels.push(level);
  };
}

/** A console that keeps what the guest sent and lets a test type input. */
export class MemoryConsole implements SerialConsole {
  readonly kind = 'memory';
  readonly output: number[] = [];
  rx: SerialRxPort | undefined;
  closed = false;
  transmit(byte: number): void {
    this.output.push(byte);
  }
  connect(rx: SerialRxPort): void {
    this.rx = rx;
  }
  close(): void {
    this.closed = true;
  }
  text(): string {
    return Buffer.from(this.output).toString('latin1');
  }
  /** Offers bytes to the UART as a backend would; returns how many it took. */
  type(s: string | Uint8Array): number {
    if (!this.rx) throw new Error('MemoryConsole: device not activated');
    return this.rx.receive(typeof s === 'string' ? Buffer.from(s, 'latin1') : s);
  }
}

/** Guest-side byte accesses to a BusDevice (what `inb`/`outb` become). */
export class PortDriver {
  constructor(private readonly dev: BusDevice) {}
  inb(offset: number): number {
    const d = new Uint8Array(1);
    this.dev.read(BigInt(offset), d);
    return d[0];
  }
  outb(offset: number, value: number): void {
    this.dev.write(BigInt(offset), Uint8Array.of(value & 0xff));
  }
  /** An access of `size` bytes, as a hostile guest might do to a byte register. */
  in(offset: number, size: number): Uint8Array {
    const d = new Uint8Array(size);
    this.dev.read(BigInt(offset), d);
    return d;
  }
  out(offset: number, bytes: number[]): void {
    this.dev.write(BigInt(offset), Uint8Array.from(bytes));
  }
}

/** A Vm double that records interrupt line changes; other calls are not expected from legacy devices. */
export class RecordingVm {
  readonly irqCalls: Array<{ gsi: number; level: boolean }> = [];
  private readonly lines = new Map<number, boolean>();
  setIrqLine(gsi: number, level: boolean): void {
    this.irqCalls.push({ gsi, level });
    this.lines.set(gsi, level);
  }
  level(gsi: number): boolean {
    return this.lines.get(gsi) ?? false;
  }
  asVm(): Vm {
    return new Proxy(this, {
      get: (t, p) => {
        if (p in t) return (t as unknown as Record<PropertyKey, unknown>)[p];
        if (typeof p === 'symbol' || p === 'then') return undefined;
        return () => {
          throw new Error(`RecordingVm: ${p} not implemented`);
        };
      },
    }) as unknown as Vm;
  }
}

/** One entry a RecordingLogger kept: level, bound fields and message. */
export interface LogEntry {
  level: string;
  obj: unknown;
  msg?: string;
}

/** A logger that keeps its entries (children share the parent's list). */
export class RecordingLogger implements Logger {
  constructor(
    readonly entries: LogEntry[] = [],
    private readonly bindings: Record<string, unknown> = {},
  ) {}
  private add(level: string, obj: object | string, msg?: string): void {
    this.entries.push({
      level,
      obj: typeof obj === 'string' ? obj : { ...this.bindings, ...obj },
      msg: typeof obj === 'string' ? obj : msg,
    });
  }
  trace(o: object | string, m?: string): void {
    this.add('trace', o, m);
  }
  debug(o: object | string, m?: string): void {
    this.add('debug', o, m);
  }
  info(o: object | string, m?: string): void {
    this.add('info', o, m);
  }
  warn(o: object | string, m?: string): void {
    this.add('warn', o, m);
  }
  error(o: object | string, m?: string): void {
    this.add('error', o, m);
  }
  child(b: Record<string, unknown>): Logger {
    return new RecordingLogger(this.entries, { ...this.bindings, ...b });
  }
  messages(level?: string): string[] {
    return this.entries.filter((e) => !level || e.level === level).map((e) => e.msg ?? '');
  }
}

/** What createLegacyTestBed returns: the container, the real services, the recording Vm and logger. */
export interface LegacyTestBed {
  container: DependencyContainer;
  bus: RangeBus;
  registry: OrderedDeviceRegistry;
  /** The real Resources service over core/testing's PC-like test layout. */
  resources: PlatformResources;
  /** The real Interrupts service driving `vm`. */
  interrupts: VmInterrupts;
  vm: RecordingVm;
  lifecycle: VmLifecycle;
  logger: RecordingLogger;
  /** A plugin context for `instance` with an already-validated config. */
  context<C>(instance: string, config: C, baseDir?: string): PluginInstanceInfo<C>;
}

/**
 * A child container holding core's real bus, registry, Resources and Interrupts services (over
 * the test layout) plus a recording Vm and logger.
 */
export function createLegacyTestBed(): LegacyTestBed {
  const container = rootContainer.createChildContainer();
  const logger = new RecordingLogger();
  const bus = new RangeBus(logger);
  const registry = new OrderedDeviceRegistry();
  const resources = new PlatformResources(testPlatformLayout());
  const vm = new RecordingVm();
  const interrupts = new VmInterrupts({ resources, vm: () => vm.asVm(), eventFds: new FakeEventFdFactory() });
  const lifecycle = new VmLifecycle();
  container.register(Tokens.Bus.token, { useValue: bus });
  container.register(Tokens.DeviceRegistry.token, { useValue: registry });
  container.register(Tokens.PlatformLayout.token, { useValue: resources.layout });
  container.register(Tokens.Resources.token, { useValue: resources });
  container.register(Tokens.Interrupts.token, { useValue: interrupts });
  container.register(Tokens.Vm.token, { useValue: vm.asVm() });
  container.register(Tokens.Lifecycle.token, { useValue: lifecycle });
  container.register(Tokens.Logger.token, { useValue: logger });
  const vmConfig = VmConfigSchema.parse({});
  return {
    container,
    bus,
    registry,
    resources,
    interrupts,
    vm,
    lifecycle,
    logger,
    context: <C>(instance: string, config: C, baseDir = process.cwd()): PluginInstanceInfo<C> => ({
      config,
      vm: vmConfig,
      logger,
      lifecycle,
      baseDir,
      instance,
    }),
  };
}

/** An activated UART 'serial0' with a recording irq line, an in-memory console and a port driver (unit tests). */
export function uartTestBed(rxFifoSize = 64) {
  const irq = new RecordingIrqLine();
  const console = new MemoryConsole();
  const uart = new Uart16550({ id: 'serial0', console, irq: irq.line, rxFifoSize });
  uart.activate();
  return { uart, irq, console, io: new PortDriver(uart) };
}
