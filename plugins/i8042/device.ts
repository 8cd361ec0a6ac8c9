import type { BusDevice, Disposable } from '../../core/bus/bus.js';
import type { PioFastPath, PioFastPathPublisher } from '../../core/bus/fast-path.js';
import type { Device, Resettable } from '../../core/device/device.js';
import type { Snapshottable } from '../../core/state/snapshottable.js';
import type { Logger } from '../../core/logger.js';
import { I8042Metrics } from './metrics.js';
import {
  AUX_TEST_NO_DEVICE,
  COMMANDS_WITH_ARG,
  Cmd,
  Ctr,
  Kbd,
  OUTPUT_QUEUE_MAX,
  OutputPort,
  SELF_TEST_OK,
  Status,
} from './registers.js';
import { I8042StateSpec, type I8042State } from './state.js';

/** What an I8042Controller needs: its id, a logger, the keyboard line (level) and what a reset command does. */
export interface I8042Options {
  readonly id: string;
  /** Drives IRQ 1: high while a byte waits and the command byte enables keyboard interrupts. */
  readonly irq: (level: boolean) => void;
  /** The guest asked for a CPU reset (command 0xFE, or the output port's reset line pulled low). */
  readonly onResetRequest: () => void;
  readonly logger?: Logger;
  readonly metrics?: I8042Metrics;
}

/** Command byte a BIOS leaves behind: keyboard interrupt on, system flag set. */
const DEFAULT_CTR = Ctr.KBDINT | Ctr.SYS;
const DEFAULT_OUTPUT_PORT = OutputPort.RESET_N | OutputPort.A20;

/**
 * The PS/2 controller as Linux's i8042 driver uses it, with a keyboard that
 * answers its commands at once and sends no keys, and no aux (mouse) port.
 *
 * - Port 0x64 read: status; write: controller command. Port 0x60: data both ways.
 * - CPU reset (0xFE, or any 0xF0-0xFF pulse with bit 0 clear, or 0xD1 with bit 0
 *   clear) calls onResetRequest; the machine decides between exit and restart.
 * - The aux port is absent the way Linux detects quickly: AUX_LOOP (0xD3) echoes
 *   its byte as keyboard data (the driver's AUXDATA check fails at once) and
 *   AUX_TEST (0xA9) reports the clock line stuck high. IRQ 12 is never used.
 * - Interrupt line: level follows "byte waiting and CTR.KBDINT"; reading port 0x60
 *   drops it and the next queued byte raises it again, one edge per byte for an
 *   edge-triggered irqchip.
 * Unknown commands are ignored and counted; no access throws.
 * - Fast path (core/bus/fast-path.ts): the status register is published, so a vCPU thread answers status polls
 *   itself (Linux polls it before and after every command); it changes only in accesses that reach the device
 *   (no write is queued), which publish the new value before the vCPU runs on.
 */
export class I8042Controller implements Device, Resettable, Snapshottable<I8042State> {
  readonly id: string;
  readonly stateSpec = I8042StateSpec;
  readonly metrics: I8042Metrics;
  /** Contract C4 (core/device Countable): this device's counters for vm.counters and /metrics. */
  counters(): Record<string, number> {
    return this.metrics.toJSON();
  }
  /** Bus views of the two ports (each registered as a 1-byte range). */
  readonly dataPort: BusDevice;
  readonly commandPort: BusDevice & PioFastPathPublisher;
  /** Fast paths of the command port that show the status register (runners with vCPU threads). */
  private statusPaths: PioFastPath[] = [];

  private readonly irq: (level: boolean) => void;
  private readonly onResetRequest: () => void;
  private readonly logger?: Logger;

  private ctr = DEFAULT_CTR;
  private outputPort = DEFAULT_OUTPUT_PORT;
  private lastWasCommand = false;
  /** A controller command waiting for its parameter byte on port 0x60. */
  private pendingCommand: number | undefined;
  /** A keyboard command waiting for its argument byte. */
  private kbdPendingArg: number | undefined;
  private readonly output: number[] = [];
  private irqLevel = false;

  constructor(opts: I8042Options) {
    this.id = opts.id;
    this.irq = opts.irq;
    this.onResetRequest = opts.onResetRequest;
    this.logger = opts.logger;
    this.metrics = opts.metrics ?? new I8042Metrics();
    this.dataPort = {
      read: (_o, d) => this.access(d, () => this.readData()),
      write: (_o, d) => this.access(d, () => this.writeData(d[0])),
    };
    this.commandPort = {
      read: (_o, d) => this.access(d, () => this.readStatus()),
      write: (_o, d) => this.access(d, () => this.writeCommand(d[0])),
      attachPioFastPath: (fp) => this.attachStatusPath(fp),
    };
  }

  private attachStatusPath(fp: PioFastPath): Disposable {
    this.statusPaths.push(fp);
    fp.setReadValue(0, this.readStatus());
    return {
      dispose: () => {
        this.statusPaths = this.statusPaths.filter((f) => f !== fp);
      },
    };
  }

  /** Publishes the status register after anything that may have changed it. */
  private publishStatus(): void {
    if (this.statusPaths.length === 0) return;
    const s = this.readStatus();
    for (const fp of this.statusPaths) fp.setReadValue(0, s);
  }

  reset(): void {
    this.ctr = DEFAULT_CTR;
    this.outputPort = DEFAULT_OUTPUT_PORT;
    this.lastWasCommand = false;
    this.pendingCommand = undefined;
    this.kbdPendingArg = undefined;
    this.output.length = 0;
    this.updateIrq();
    this.publishStatus();
  }

  /** Runs one byte access; fills wider reads with 0xff and contains any failure. */
  private access(data: Uint8Array, op: () => number | void): void {
    if (data.length !== 1) this.metrics.oddAccesses++;
    if (data.length === 0) return;
    try {
      const v = op();
      if (typeof v === 'number') {
        data.fill(0xff);
        data[0] = v;
      }
    } catch (err) {
      data.fill(0xff);
      this.logger?.error({ err }, 'i8042: access failed');
    }
    this.publishStatus();
  }

  readStatus(): number {
    let s = Status.UNLOCKED;
    if (this.output.length > 0) s |= Status.OBF;
    if (this.ctr & Ctr.SYS) s |= Status.SYS;
    if (this.lastWasCommand) s |= Status.CMD;
    return s;
  }

  private readData(): number {
    const b = this.output.shift();
    // Reading empties the buffer and drops the line; a further queued byte then raises
    // it again, so an edge-triggered irqchip sees one edge per byte (Linux reads one per IRQ).
    if (b !== undefined) this.setLevel(false);
    this.updateIrq();
    // An empty buffer reads as the last byte on real hardware; 0 is as good for a driver that checked OBF.
    return b ?? 0;
  }

  private writeCommand(cmd: number): void {
    this.lastWasCommand = true;
    this.pendingCommand = undefined;
    if (COMMANDS_WITH_ARG.has(cmd) || (cmd > Cmd.WRITE_CTR && cmd <= 0x7f)) {
      this.pendingCommand = cmd;
      return;
    }
    if (cmd >= Cmd.PULSE_BASE) {
      if (!(cmd & OutputPort.RESET_N)) this.requestReset(`command 0x${cmd.toString(16)}`);
      return;
    }
    if (cmd >= 0x21 && cmd <= 0x3f) {
      this.reply(0);
      return;
    } // controller RAM: reads as zero
    switch (cmd) {
      case Cmd.READ_CTR:
        this.reply(this.ctr);
        return;
      case Cmd.AUX_DISABLE:
        this.ctr |= Ctr.AUXDIS;
        return;
      case Cmd.AUX_ENABLE:
        this.ctr &= ~Ctr.AUXDIS;
        return;
      case Cmd.AUX_TEST:
        this.reply(AUX_TEST_NO_DEVICE);
        return;
      case Cmd.SELF_TEST:
        this.ctr |= Ctr.SYS;
        this.reply(SELF_TEST_OK);
        return;
      case Cmd.KBD_TEST:
        this.reply(0x00);
        return;
      case Cmd.KBD_DISABLE:
        this.ctr |= Ctr.KBDDIS;
        return;
      case Cmd.KBD_ENABLE:
        this.ctr &= ~Ctr.KBDDIS;
        return;
      case Cmd.READ_INPUT:
        this.reply(0x00);
        return;
      case Cmd.READ_OUTPUT:
        this.reply(this.outputPort);
        return;
      case Cmd.A20_DISABLE:
        this.outputPort &= ~OutputPort.A20;
        return;
      case Cmd.A20_ENABLE:
        this.outputPort |= OutputPort.A20;
        return;
      case Cmd.READ_TEST_INPUTS:
        this.reply(0x00);
        return;
      default:
        this.metrics.unknownCommands++;
    }
  }

  private writeData(v: number): void {
    this.lastWasCommand = false;
    const cmd = this.pendingCommand;
    this.pendingCommand = undefined;
    if (cmd === undefined) {
      this.keyboard(v);
      return;
    }
    switch (cmd) {
      case Cmd.WRITE_CTR:
        this.ctr = v;
        this.updateIrq();
        return;
      case Cmd.WRITE_OUTPUT:
        this.outputPort = v;
        if (!(v & OutputPort.RESET_N)) this.requestReset('output port reset line');
        return;
      case Cmd.WRITE_KBD_OUT:
      case Cmd.WRITE_AUX_OUT: // no aux port: echoed as keyboard data, see the class comment
        this.push(v);
        return;
      default:
        return; // WRITE_AUX (no mouse to receive it) and controller RAM writes
    }
  }

  /** An AT keyboard that acknowledges everything it knows and sends no keys. */
  private keyboard(v: number): void {
    const arg = this.kbdPendingArg;
    if (arg !== undefined) {
      this.kbdPendingArg = undefined;
      this.push(Kbd.ACK);
      if (arg === Kbd.SCANSET && v === 0) this.push(0x02); // "which set?" -> set 2
      return;
    }
    switch (v) {
      case Kbd.RESET_BAT:
        this.push(Kbd.ACK);
        this.push(Kbd.BAT_OK);
        return;
      case Kbd.GET_ID:
        this.push(Kbd.ACK);
        this.push(Kbd.ID[0]);
        this.push(Kbd.ID[1]);
        return;
      case Kbd.ECHO:
        this.push(Kbd.ECHO);
        return;
      case Kbd.SET_LEDS:
      case Kbd.SET_REP:
      case Kbd.SCANSET:
        this.kbdPendingArg = v;
        this.push(Kbd.ACK);
        return;
      default:
        if (v >= 0xf4) {
          this.push(Kbd.ACK);
          return;
        } // enable, disable, defaults, typematic modes, resend
        this.metrics.unknownKeyboardCommands++;
        this.push(Kbd.RESEND);
    }
  }

  private requestReset(why: string): void {
    this.metrics.resetRequests++;
    this.logger?.info({ why }, 'guest requested a CPU reset through the i8042');
    try {
      this.onResetRequest();
    } catch (err) {
      this.logger?.error({ err }, 'i8042: reset request handler failed');
    }
  }

  /** A controller reply replaces whatever stale byte the guest left unread (one-byte output buffer). */
  private reply(v: number): void {
    this.output.length = 0;
    this.push(v);
  }

  private push(v: number): void {
    if (this.output.length >= OUTPUT_QUEUE_MAX) {
      this.metrics.outputDropped++;
      return;
    }
    this.output.push(v & 0xff);
    this.updateIrq();
  }

  private updateIrq(): void {
    this.setLevel(this.output.length > 0 && (this.ctr & Ctr.KBDINT) !== 0);
  }

  private setLevel(level: boolean): void {
    if (level === this.irqLevel) return;
    this.irqLevel = level;
    try {
      this.irq(level);
    } catch (err) {
      this.metrics.irqErrors++;
      this.logger?.error({ err, level }, 'i8042: setting the interrupt line failed');
    }
  }

  get irqAsserted(): boolean {
    return this.irqLevel;
  }

  saveState(): I8042State {
    return {
      ctr: this.ctr,
      outputPort: this.outputPort,
      lastWasCommand: this.lastWasCommand,
      pendingCommand: this.pendingCommand ?? null,
      kbdPendingArg: this.kbdPendingArg ?? null,
      output: [...this.output],
    };
  }

  /** Applies a validated state (core/state's restoreSnapshot validates untrusted input first). */
  loadState(s: I8042State): void {
    this.ctr = s.ctr;
    this.outputPort = s.outputPort;
    this.lastWasCommand = s.lastWasCommand;
    this.pendingCommand = s.pendingCommand ?? undefined;
    this.kbdPendingArg = s.kbdPendingArg ?? undefined;
    this.output.length = 0;
    this.output.push(...s.output);
    this.irqLevel = !(this.output.length > 0 && (this.ctr & Ctr.KBDINT) !== 0);
    this.updateIrq();
    this.publishStatus();
  }
}
