import type { BusDevice, Disposable } from '../../core/bus/bus.js';
import type { PioFastPath, PioFastPathPublisher } from '../../core/bus/fast-path.js';
import type { Device, Resettable } from '../../core/device/device.js';
import type { Snapshottable } from '../../core/state/snapshottable.js';
import type { Logger } from '../../core/logger.js';
import { hostClock, type RtcClock } from './clock.js';
import { RtcMetrics } from './metrics.js';
import {
  CMOS_SIZE,
  INDEX_MASK,
  NMI_DISABLE,
  REG_D_VRT,
  Reg,
  RegA,
  RegB,
  TIME_REGS,
  UIP_WINDOW_MS,
} from './registers.js';
import { RtcStateSpec, type RtcState } from './state.js';
import {
  dayOfWeek,
  decode,
  decodeHours,
  encode,
  encodeHours,
  msFromTime,
  timeFromMs,
  type RtcTime,
} from './time-format.js';

/** What a CmosRtc needs: its id, and optionally the clock it reads host UTC from (tests), logger, metrics. */
export interface CmosRtcOptions {
  readonly id: string;
  readonly clock?: RtcClock;
  readonly logger?: Logger;
  readonly metrics?: RtcMetrics;
}

const isTimeReg = (i: number): boolean => TIME_REGS.includes(i);

/**
 * An MC146818-style CMOS RTC on ports 0x70 (index, bit 7 = NMI disable) and 0x71 (data).
 *
 * Time is the host's UTC clock plus an offset the guest sets by writing the time
 * registers (with register B's SET bit, or one register at a time). Values are
 * BCD or binary and 24h or 12h per register B. Register A's UIP bit is set in the
 * last 244 µs before each second changes, as on the real part, so Linux's
 * "read until UIP is clear and the seconds are stable" loop ends after at most a
 * few retries. Register D reads "valid RAM and time". The other bytes of the
 * 128-byte CMOS keep what the guest writes.
 *
 * Not supported: interrupts (IRQ 8: periodic, alarm and update-ended); register
 * C reads 0 and the PIE/AIE/UIE bits of B are stored but raise nothing; the
 * alarm registers are plain storage; daylight saving (DSE) is ignored; register
 * A's divider bits do not stop the clock. Days of week written by the guest are
 * ignored: the day of week is derived from the date.
 *
 * Fast path (a runner with vCPU threads, core/bus/fast-path.ts): index writes are queued on the vCPU's thread and
 * index reads answer 0xff there, so reading one CMOS byte costs one hop to the device (the data read, which sees
 * the queued index first) instead of two; Linux reads the clock ~100 times while it boots.
 */
export class CmosRtc implements Device, Resettable, Snapshottable<RtcState>, BusDevice, PioFastPathPublisher {
  readonly id: string;
  readonly stateSpec = RtcStateSpec;
  readonly metrics: RtcMetrics;
  /** Contract C4 (core/device Countable): this device's counters for vm.counters and /metrics. */
  counters(): Record<string, number> {
    return this.metrics.toJSON();
  }
  private readonly clock: RtcClock;
  private readonly logger?: Logger;

  private index = 0;
  private nmiDisabled = false;
  private readonly cmos = new Uint8Array(CMOS_SIZE);
  /** Guest time minus host time, in ms (a whole number of seconds plus nothing: host sub-second phase is kept). */
  private offsetMs = 0;
  /** While set (B.SET, or inside a single-register write) the time registers hold raw guest bytes in `cmos`. */
  private frozen = false;
  /** The guest wrote the century byte during this frozen window (else the year pivots at 70). */
  private centuryWritten = false;

  constructor(opts: CmosRtcOptions) {
    this.id = opts.id;
    this.clock = opts.clock ?? hostClock;
    this.logger = opts.logger;
    this.metrics = opts.metrics ?? new RtcMetrics();
    this.powerOn();
  }

  private powerOn(): void {
    this.cmos.fill(0);
    this.cmos[Reg.A] = RegA.DEFAULT;
    this.cmos[Reg.B] = RegB.DEFAULT;
    this.cmos[Reg.D] = REG_D_VRT;
    this.index = 0;
    this.nmiDisabled = false;
    this.frozen = false;
    this.centuryWritten = false;
  }

  /**
   * Resets registers and NVRAM to power-on values; the guest's time offset survives (the battery keeps the
   * clock running).
   */
  reset(): void {
    this.powerOn();
  }

  // ---- Fast path ----

  /**
   * Index-port writes may wait in the vCPU's queue: they only choose what the next data access reaches (which
   * always comes to the device, after the queue), and the NMI-disable bit is only stored. The index port reads 0xff
   * whatever the state.
   */
  attachPioFastPath(fp: PioFastPath): Disposable {
    fp.setWriteMode(0, 'queue');
    fp.setReadValue(0, 0xff);
    return { dispose: () => {} };
  }

  // ---- BusDevice ----

  read(offset: bigint, data: Uint8Array): void {
    if (data.length !== 1) this.metrics.oddAccesses++;
    for (let i = 0; i < data.length; i++) {
      const port = offset + BigInt(i);
      try {
        data[i] = port === 1n ? this.readData() : 0xff; // the index port is write-only
      } catch (err) {
        data[i] = 0xff;
        this.logger?.error({ err }, 'rtc: read failed');
      }
    }
  }

  write(offset: bigint, data: Uint8Array): void {
    if (data.length !== 1) this.metrics.oddAccesses++;
    for (let i = 0; i < data.length; i++) {
      const port = offset + BigInt(i);
      try {
        if (port === 0n) {
          this.index = data[i] & INDEX_MASK;
          this.nmiDisabled = (data[i] & NMI_DISABLE) !== 0;
        } else if (port === 1n) {
          this.writeData(data[i]);
        }
      } catch (err) {
        this.logger?.error({ err }, 'rtc: write failed');
      }
    }
  }

  /** Whether the guest last set the NMI-disable bit (a PC's port 0x70 bit 7; KVM's NMIs are not gated by it). */
  get nmiMasked(): boolean {
    return this.nmiDisabled;
  }

  // ---- registers ----

  private readData(): number {
    this.metrics.reads++;
    const i = this.index;
    switch (i) {
      case Reg.A: {
        const uip = this.updateInProgress();
        if (uip) this.metrics.uipReads++;
        return (this.cmos[Reg.A] & ~RegA.UIP) | (uip ? RegA.UIP : 0);
      }
      case Reg.C:
        return 0; // no interrupt flags: interrupts are not emulated
      case Reg.D:
        return REG_D_VRT;
      default:
        if (isTimeReg(i) && !this.frozen) return this.timeRegister(i, timeFromMs(this.guestNowMs()));
        return this.cmos[i];
    }
  }

  private writeData(v: number): void {
    this.metrics.writes++;
    const i = this.index;
    switch (i) {
      case Reg.A:
        this.cmos[Reg.A] = v & ~RegA.UIP;
        return;
      case Reg.B:
        this.writeB(v);
        return;
      case Reg.C:
      case Reg.D:
        return; // read-only
      default:
        if (!isTimeReg(i)) {
          this.cmos[i] = v;
          return;
        }
        if (this.frozen) {
          this.cmos[i] = v;
          if (i === Reg.CENTURY) this.centuryWritten = true;
          return;
        }
        // A single register written while the clock runs: apply it at once (as QEMU does).
        this.freeze();
        this.cmos[i] = v;
        if (i === Reg.CENTURY) this.centuryWritten = true;
        this.commit();
    }
  }

  private writeB(v: number): void {
    const wasSet = (this.cmos[Reg.B] & RegB.SET) !== 0;
    const set = (v & RegB.SET) !== 0;
    if (set && !wasSet) this.freeze();
    // Data mode changes only affect how later reads are encoded; raw bytes written under SET
    // are decoded with the mode in force when SET is cleared.
    this.cmos[Reg.B] = set ? v & ~RegB.UIE : v;
    if (!set && wasSet) this.commit();
  }

  private guestNowMs(): number {
    return this.clock.nowMs() + this.offsetMs;
  }

  private updateInProgress(): boolean {
    if (this.frozen) return false;
    const frac = ((this.guestNowMs() % 1000) + 1000) % 1000;
    return frac >= 1000 - UIP_WINDOW_MS;
  }

  private timeRegister(i: number, t: RtcTime): number {
    const b = this.cmos[Reg.B];
    switch (i) {
      case Reg.SECONDS:
        return encode(t.second, b);
      case Reg.MINUTES:
        return encode(t.minute, b);
      case Reg.HOURS:
        return encodeHours(t.hour, b);
      case Reg.DAY_OF_WEEK:
        return encode(dayOfWeek(t), b);
      case Reg.DAY_OF_MONTH:
        return encode(t.day, b);
      case Reg.MONTH:
        return encode(t.month, b);
      case Reg.YEAR:
        return encode(t.year % 100, b);
      default:
        return encode(Math.floor(t.year / 100), b);
    }
  }

  /** Copies the running time into the time registers and stops them changing. */
  private freeze(): void {
    const t = timeFromMs(this.guestNowMs());
    for (const i of TIME_REGS) this.cmos[i] = this.timeRegister(i, t);
    this.frozen = true;
    this.centuryWritten = false;
  }

  /** Decodes the frozen registers into a new offset; an invalid time is refused and the old offset kept. */
  private commit(): void {
    this.frozen = false;
    const b = this.cmos[Reg.B];
    const yy = decode(this.cmos[Reg.YEAR], b);
    const century = decode(this.cmos[Reg.CENTURY], b);
    const t = {
      second: decode(this.cmos[Reg.SECONDS], b),
      minute: decode(this.cmos[Reg.MINUTES], b),
      hour: decodeHours(this.cmos[Reg.HOURS], b),
      day: decode(this.cmos[Reg.DAY_OF_MONTH], b),
      month: decode(this.cmos[Reg.MONTH], b),
      year:
        yy === undefined || yy > 99
          ? undefined
          : this.centuryWritten && century !== undefined && century >= 19 && century <= 29
            ? century * 100 + yy
            : yy < 70
              ? 2000 + yy
              : 1900 + yy,
    };
    const ms = Object.values(t).every((v) => v !== undefined) ? msFromTime(t as RtcTime) : undefined;
    if (ms === undefined) {
      this.metrics.invalidTimeWrites++;
      this.logger?.debug(
        { regs: TIME_REGS.map((i) => this.cmos[i]) },
        'rtc: guest wrote an invalid time; keeping the clock',
      );
      return;
    }
    const host = this.clock.nowMs();
    // Keep the host's sub-second phase so UIP and second changes stay aligned with it.
    this.offsetMs = ms - (host - (((host % 1000) + 1000) % 1000));
  }

  // ---- Snapshottable ----

  saveState(): RtcState {
    return {
      index: this.index,
      nmiDisabled: this.nmiDisabled,
      cmos: [...this.cmos],
      offsetMs: this.offsetMs,
      frozen: this.frozen,
      centuryWritten: this.centuryWritten,
    };
  }

  /** Applies a validated state (core/state's restoreSnapshot validates untrusted input first). */
  loadState(s: RtcState): void {
    this.index = s.index;
    this.nmiDisabled = s.nmiDisabled;
    this.cmos.set(s.cmos);
    this.offsetMs = s.offsetMs;
    this.frozen = s.frozen;
    this.centuryWritten = s.centuryWritten;
  }
}
