import type { BusDevice, Disposable } from '../../core/bus/bus.js';
import type { PioFastPath, PioFastPathPublisher } from '../../core/bus/fast-path.js';
import type { Device, Resettable } from '../../core/device/device.js';
import type { Snapshottable } from '../../core/state/snapshottable.js';
import type { Logger } from '../../core/logger.js';
import type { SerialConsole, SerialRxPort } from './console/console.js';
import { SerialMetrics } from './metrics.js';
import {
  DEFAULT_DIVISOR,
  Fcr,
  Ier,
  Iir,
  LSR_ERRORS,
  Lcr,
  Lsr,
  Mcr,
  Msr,
  REGISTER_COUNT,
  RX_TRIGGER,
  Reg,
} from './registers.js';
import { checkSerialState, SerialStateSpec, type SerialState } from './state.js';

/** Drives the UART's interrupt line: true while an enabled interrupt is pending. */
export type IrqLine = (level: boolean) => void;

/** What a Uart16550 needs: id, console, the interrupt line (level), RX FIFO size, logger, metrics. */
export interface Uart16550Options {
  readonly id: string;
  readonly console: SerialConsole;
  readonly irq: IrqLine;
  /** RX FIFO capacity while FIFOs are enabled (a real 16550A has 16; default 64). With FIFOs off it holds 1 byte. */
  readonly rxFifoSize?: number;
  readonly logger?: Logger;
  readonly metrics?: SerialMetrics;
}

/** Modem status lines a UART with nothing attached reports: carrier, data set ready, clear to send. */
const IDLE_MODEM_STATUS = Msr.DCD | Msr.DSR | Msr.CTS;

/**
 * A 16550A UART as Linux's 8250 driver probes and drives it.
 *
 * Interrupt line: level semantics, the line is high exactly while an enabled
 * interrupt is pending (what QEMU's serial does). KVM's in-kernel IOAPIC/PIC treat
 * ISA lines as edge-triggered: they latch the 0->1 transition. Linux's 8250 ISR
 * loops until IIR reads "no interrupt", which drops the line, so every condition
 * arising afterwards produces a fresh rising edge; a condition arising while the
 * ISR still runs is found by its next IIR read. See device.test.ts ("edge-triggered").
 *
 * Transmission completes instantly: a THR write goes to the console and THRE/TEMT
 * are set again at once, re-arming the THRE interrupt if IER.THRI is set.
 * Guest accesses never throw: wider accesses are split into byte accesses (as an
 * 8-bit ISA device sees them); offsets past the 8 registers read 0xff.
 */
export class Uart16550
  implements Device, Resettable, Snapshottable<SerialState>, BusDevice, SerialRxPort, PioFastPathPublisher
{
  readonly id: string;
  readonly stateSpec = SerialStateSpec;
  readonly metrics: SerialMetrics;
  /** Contract C4 (core/device Countable): this device's counters for vm.counters and /metrics. */
  counters(): Record<string, number> {
    return this.metrics.toJSON();
  }
  private readonly console: SerialConsole;
  private readonly irq: IrqLine;
  private readonly fifoCapacity: number;
  private readonly logger?: Logger;

  private ier = 0;
  private lcr = 0;
  private mcr = 0;
  private scr = 0;
  private divisor = DEFAULT_DIVISOR;
  private fifoEnabled = false;
  private rxTrigger = 1;
  /** Latched error bits of LSR (OE/PE/FE/BI); DR, THRE and TEMT are derived. */
  private lsrErrors = 0;
  /** Upper MSR nibble as last computed, and the latched delta bits. */
  private msrStatus = IDLE_MODEM_STATUS;
  private msrDelta = 0;
  /**
   * THR-empty interrupt pending: set when THR empties or IER.THRI is turned on, cleared by an IIR read that
   * reports it or a THR write.
   */
  private thrPending = false;
  private readonly rx: number[] = [];

  private irqLevel = false;
  private rxWaiter: (() => void) | undefined;
  private rxWakeScheduled = false;
  private activated = false;
  private destroyed = false;
  /** Where the vCPU runner lets this UART publish fast paths (core/bus/fast-path.ts); usually one. */
  private fastPaths: PioFastPath[] = [];

  constructor(opts: Uart16550Options) {
    this.id = opts.id;
    this.console = opts.console;
    this.irq = opts.irq;
    const size = opts.rxFifoSize ?? 64;
    this.fifoCapacity = Number.isSafeInteger(size) && size >= 1 ? size : 64;
    this.logger = opts.logger;
    this.metrics = opts.metrics ?? new SerialMetrics();
  }

  // ---- Device lifecycle ----

  activate(): void {
    if (this.activated || this.destroyed) return;
    this.activated = true;
    this.console.connect(this);
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.logger?.info(
      {
        ...this.metrics.toJSON(),
        ier: this.ier,
        thrPending: this.thrPending,
        irqLine: this.irqLevel,
        rxQueued: this.rx.length,
      },
      'serial: stopped',
    );
    this.rxWaiter = undefined;
    this.console.close();
    this.publishFastPath();
  }

  reset(): void {
    this.ier = 0;
    this.lcr = 0;
    this.mcr = 0;
    this.scr = 0;
    this.divisor = DEFAULT_DIVISOR;
    this.fifoEnabled = false;
    this.rxTrigger = 1;
    this.lsrErrors = 0;
    this.msrStatus = IDLE_MODEM_STATUS;
    this.msrDelta = 0;
    this.thrPending = false;
    this.rx.length = 0;
    this.updateIrq();
    this.wakeRx();
    this.publishFastPath();
  }

  // ---- Fast paths (vCPU-thread handling of the hot registers) ----

  attachPioFastPath(fp: PioFastPath): Disposable {
    this.fastPaths.push(fp);
    this.publishFastPath();
    return {
      dispose: () => {
        this.fastPaths = this.fastPaths.filter((f) => f !== fp);
      },
    };
  }

  /**
   * Publishes, from the register model (the source of truth), what a vCPU thread may do alone:
   *  - THR writes are queued (delivered later through write(), in order, before the vCPU's next
   *    access reaches this device) while DLAB=0 (else they set the divisor) and not in loopback
   *    (else they feed the RX FIFO and change LSR.DR). IER writes are queued while DLAB=0 (else
   *    they set the divisor). IER.THRI needs nothing more: every delivered write runs transmit() /
   *    writeIer() as a direct one would, and IIR and IER reads are never fast, so they see all
   *    queued writes first; only the moment the THRE interrupt rises moves later, which a real
   *    UART's transmission delay does too.
   *  - LSR reads are answered with lsr() while no clear-on-read error bit (OE/PE/FE/BI) is latched;
   *    queued THR writes cannot change it (transmission is instant, and not in loopback).
   *  - MSR reads are answered while no delta bit is latched (reading clears them).
   * Called after every guest access and every change from the host side (input, reset, restore).
   */
  private publishFastPath(): void {
    if (this.fastPaths.length === 0) return;
    const dlab = (this.lcr & Lcr.DLAB) !== 0;
    const queueThr = !this.destroyed && !dlab && !(this.mcr & Mcr.LOOP);
    const queueIer = !this.destroyed && !dlab;
    const lsr = this.lsrErrors === 0 ? this.lsr() : undefined;
    const msr = this.msrDelta === 0 ? this.msrStatus : undefined;
    for (const fp of this.fastPaths) {
      fp.setWriteMode(Reg.DATA, queueThr ? 'queue' : 'device');
      fp.setWriteMode(Reg.IER, queueIer ? 'queue' : 'device');
      fp.setReadValue(Reg.LSR, lsr);
      fp.setReadValue(Reg.MSR, msr);
    }
  }

  // ---- BusDevice: guest accesses ----

  read(offset: bigint, data: Uint8Array): void {
    if (data.length !== 1) this.metrics.oddAccesses++;
    for (let i = 0; i < data.length; i++) {
      const reg = offset + BigInt(i);
      try {
        data[i] = reg < BigInt(REGISTER_COUNT) && reg >= 0n ? this.readRegister(Number(reg)) : 0xff;
      } catch (err) {
        data[i] = 0xff;
        this.logger?.error({ err, reg: Number(reg) }, 'serial: register read failed');
      }
    }
    this.publishFastPath();
  }

  write(offset: bigint, data: Uint8Array): void {
    if (data.length !== 1) this.metrics.oddAccesses++;
    for (let i = 0; i < data.length; i++) {
      const reg = offset + BigInt(i);
      if (reg < 0n || reg >= BigInt(REGISTER_COUNT)) {
        this.metrics.oddAccesses++;
        continue;
      }
      try {
        this.writeRegister(Number(reg), data[i]);
      } catch (err) {
        this.logger?.error({ err, reg: Number(reg) }, 'serial: register write failed');
      }
    }
    this.publishFastPath();
  }

  private readRegister(reg: number): number {
    const dlab = (this.lcr & Lcr.DLAB) !== 0;
    switch (reg) {
      case Reg.DATA:
        return dlab ? this.divisor & 0xff : this.popRx();
      case Reg.IER:
        return dlab ? (this.divisor >> 8) & 0xff : this.ier;
      case Reg.IIR_FCR:
        return this.readIir();
      case Reg.LCR:
        return this.lcr;
      case Reg.MCR:
        return this.mcr;
      case Reg.LSR: {
        const v = this.lsr();
        this.lsrErrors = 0;
        this.updateIrq();
        return v;
      }
      case Reg.MSR: {
        const v = this.msrStatus | this.msrDelta;
        this.msrDelta = 0;
        this.updateIrq();
        return v;
      }
      default:
        return this.scr;
    }
  }

  private writeRegister(reg: number, v: number): void {
    const dlab = (this.lcr & Lcr.DLAB) !== 0;
    switch (reg) {
      case Reg.DATA:
        if (dlab) this.divisor = (this.divisor & 0xff00) | v;
        else this.transmit(v);
        return;
      case Reg.IER:
        if (dlab) {
          this.divisor = (this.divisor & 0x00ff) | (v << 8);
          return;
        }
        this.writeIer(v);
        return;
      case Reg.IIR_FCR:
        this.writeFcr(v);
        return;
      case Reg.LCR:
        this.lcr = v;
        return;
      case Reg.MCR:
        this.writeMcr(v);
        return;
      case Reg.LSR:
      case Reg.MSR:
        return; // read-only status registers; writes are factory-test features we do not model
      default:
        this.scr = v;
    }
  }

  private writeIer(v: number): void {
    const next = v & Ier.MASK;
    const changed = this.ier ^ next;
    this.ier = next;
    if (changed & Ier.THRI) {
      // Linux probes this: enabling THRI with THR empty must (re)assert the THRE interrupt.
      this.thrPending = (next & Ier.THRI) !== 0;
    }
    this.updateIrq();
  }

  private writeFcr(v: number): void {
    const enable = (v & Fcr.ENABLE) !== 0;
    if (enable !== this.fifoEnabled) {
      this.fifoEnabled = enable;
      this.clearRx();
    }
    if (v & Fcr.CLEAR_RX) this.clearRx();
    // CLEAR_TX: transmission is instantaneous, so the TX FIFO is always empty.
    this.rxTrigger = RX_TRIGGER[(v & Fcr.TRIGGER_MASK) >> 6];
    this.updateIrq();
  }

  private writeMcr(v: number): void {
    const wasLoop = (this.mcr & Mcr.LOOP) !== 0;
    this.mcr = v & Mcr.MASK;
    this.setModemStatus(this.modemInputs());
    this.updateIrq();
    if (wasLoop && !(this.mcr & Mcr.LOOP)) this.wakeRx();
  }

  /** Modem inputs: wired back from MCR outputs in loopback (DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD), else idle. */
  private modemInputs(): number {
    if (!(this.mcr & Mcr.LOOP)) return IDLE_MODEM_STATUS;
    let s = 0;
    if (this.mcr & Mcr.RTS) s |= Msr.CTS;
    if (this.mcr & Mcr.DTR) s |= Msr.DSR;
    if (this.mcr & Mcr.OUT1) s |= Msr.RI;
    if (this.mcr & Mcr.OUT2) s |= Msr.DCD;
    return s;
  }

  private setModemStatus(next: number): void {
    const diff = this.msrStatus ^ next;
    if (diff & Msr.CTS) this.msrDelta |= Msr.DCTS;
    if (diff & Msr.DSR) this.msrDelta |= Msr.DDSR;
    if (diff & Msr.DCD) this.msrDelta |= Msr.DDCD;
    if (this.msrStatus & Msr.RI && !(next & Msr.RI)) this.msrDelta |= Msr.TERI;
    this.msrStatus = next;
  }

  private transmit(byte: number): void {
    this.thrPending = false;
    if (this.mcr & Mcr.LOOP) {
      this.pushRx(byte);
    } else {
      this.metrics.txBytes++;
      try {
        this.console.transmit(byte);
      } catch (err) {
        this.metrics.txDropped++;
        this.logger?.warn({ err }, 'serial: console backend failed to take a byte');
      }
    }
    // The byte left the shift register at once: THR and transmitter are empty again.
    if (this.ier & Ier.THRI) this.thrPending = true;
    this.updateIrq();
  }

  private readIir(): number {
    const id = this.pendingInterrupt();
    const fifoBits = this.fifoEnabled ? Iir.FIFO_ENABLED : 0;
    if (id === Iir.THRI) {
      // Reading IIR while it reports THRE clears that interrupt (16550 datasheet).
      this.thrPending = false;
      this.updateIrq();
    }
    return id | fifoBits;
  }

  private lsr(): number {
    let v = Lsr.THRE | Lsr.TEMT | this.lsrErrors;
    if (this.rx.length > 0) v |= Lsr.DR;
    return v;
  }

  /** The highest-priority enabled pending interrupt's IIR id, or NO_INT. */
  private pendingInterrupt(): number {
    if (this.ier & Ier.RLSI && this.lsrErrors & LSR_ERRORS) return Iir.RLSI;
    if (this.ier & Ier.RDI && this.rx.length > 0) {
      // Below the trigger level a real FIFO raises a character timeout after 4 character
      // times; with no wire timing we report it at once.
      return this.fifoEnabled && this.rx.length < this.rxTrigger ? Iir.RX_TIMEOUT : Iir.RDI;
    }
    if (this.ier & Ier.THRI && this.thrPending) return Iir.THRI;
    if (this.ier & Ier.MSI && this.msrDelta & Msr.DELTA) return Iir.MSI;
    return Iir.NO_INT;
  }

  private updateIrq(): void {
    const level = this.pendingInterrupt() !== Iir.NO_INT;
    if (level === this.irqLevel) return;
    this.irqLevel = level;
    if (level) this.metrics.irqRaised++;
    try {
      this.irq(level);
    } catch (err) {
      this.metrics.irqErrors++;
      this.logger?.error({ err, level }, 'serial: setting the interrupt line failed');
    }
  }

  // ---- Receiver ----

  private get rxCapacity(): number {
    return this.fifoEnabled ? this.fifoCapacity : 1;
  }

  private pushRx(byte: number): void {
    if (this.rx.length >= this.rxCapacity) {
      this.lsrErrors |= Lsr.OE;
      this.metrics.rxDropped++;
      return;
    }
    this.rx.push(byte & 0xff);
    this.metrics.rxBytes++;
  }

  private popRx(): number {
    if (this.rx.length === 0) return 0;
    const b = this.rx.shift() as number;
    this.updateIrq();
    this.wakeRx();
    return b;
  }

  private clearRx(): void {
    this.rx.length = 0;
    this.wakeRx();
  }

  /** SerialRxPort: console input. Refused while in loopback (the serial input is disconnected then). */
  receive(bytes: Uint8Array): number {
    if (this.destroyed || this.mcr & Mcr.LOOP) return 0;
    const n = Math.min(bytes.length, this.rxCapacity - this.rx.length);
    for (let i = 0; i < n; i++) this.rx.push(bytes[i]);
    if (n > 0) {
      this.metrics.rxBytes += n;
      this.updateIrq();
      this.publishFastPath();
    }
    return n;
  }

  onRxSpace(cb: () => void): void {
    this.rxWaiter = cb;
    if (this.hasRxRoom()) this.wakeRx();
  }

  private hasRxRoom(): boolean {
    return this.rx.length < this.rxCapacity && !(this.mcr & Mcr.LOOP);
  }

  /** Wakes a waiting backend on the next turn of the loop (never inside the guest's access). */
  private wakeRx(): void {
    if (!this.rxWaiter || this.rxWakeScheduled || !this.hasRxRoom()) return;
    this.rxWakeScheduled = true;
    setImmediate(() => {
      this.rxWakeScheduled = false;
      const cb = this.rxWaiter;
      if (!cb || this.destroyed || !this.hasRxRoom()) return;
      this.rxWaiter = undefined;
      try {
        cb();
      } catch (err) {
        this.logger?.error({ err }, 'serial: console input callback failed');
      }
    });
  }

  /** Bytes waiting in the RX FIFO (for tests and metrics). */
  get rxLength(): number {
    return this.rx.length;
  }
  /** Current level of the interrupt line. */
  get irqAsserted(): boolean {
    return this.irqLevel;
  }

  // ---- Snapshottable ----

  saveState(): SerialState {
    return {
      ier: this.ier,
      lcr: this.lcr,
      mcr: this.mcr,
      scr: this.scr,
      divisor: this.divisor,
      fifoEnabled: this.fifoEnabled,
      rxTrigger: this.rxTrigger,
      lsrErrors: this.lsrErrors,
      msrStatus: this.msrStatus,
      msrDelta: this.msrDelta,
      thrPending: this.thrPending,
      rxFifo: [...this.rx],
    };
  }

  checkState(s: SerialState): void {
    checkSerialState(s, this.fifoCapacity);
  }

  /** Applies a validated state (core/state's restoreSnapshot validates untrusted input first). */
  loadState(s: SerialState): void {
    this.ier = s.ier;
    this.lcr = s.lcr;
    this.mcr = s.mcr;
    this.scr = s.scr;
    this.divisor = s.divisor;
    this.fifoEnabled = s.fifoEnabled;
    this.rxTrigger = s.rxTrigger;
    this.lsrErrors = s.lsrErrors;
    this.msrStatus = s.msrStatus;
    this.msrDelta = s.msrDelta;
    this.thrPending = s.thrPending;
    this.rx.length = 0;
    this.rx.push(...s.rxFifo);
    // Re-drive the line from the restored state (the irqchip's own state is restored separately).
    this.irqLevel = !(this.pendingInterrupt() !== Iir.NO_INT);
    this.updateIrq();
    this.wakeRx();
    this.publishFastPath();
  }
}
