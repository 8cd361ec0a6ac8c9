import { EventEmitter } from 'eventemitter3';
import type { BusDevice } from '../../core/bus/bus.js';
import type { Device, Resettable } from '../../core/device/device.js';
import type { Snapshottable } from '../../core/state/snapshottable.js';
import type { Logger } from '../../core/logger.js';
import { bootTimes, type BootTime, type BootTimesEvents } from './boot-times.js';
import { BootTimerMetrics } from './metrics.js';
import { BootTimerStateSpec, type BootTimerState } from './state.js';

/** The byte the guest writes at offset 0 of the marker page when it has booted (as Firecracker's). */
export const BOOT_MARKER_VALUE = 123;

/** What the `BootTimer` token gives a host or test: the measured boot, as a value, an event or a promise. */
export interface BootTimeReporter {
  /** The first boot since assembly or the last reset, once the guest reported it. */
  readonly last: BootTime | undefined;
  on(event: 'boot', cb: (t: BootTime) => void): unknown;
  off(event: 'boot', cb: (t: BootTime) => void): unknown;
  /** Resolves at the next marker (or at once with `last` when the guest already booted). */
  whenBooted(): Promise<BootTime>;
}

/** What a BootTimer is built with: its id, where it logs, its clock and its counters. */
export interface BootTimerOptions {
  readonly id: string;
  readonly logger?: Logger;
  /** Monotonic milliseconds since process start (default performance.now()). */
  readonly now?: () => number;
  readonly metrics?: BootTimerMetrics;
}

/**
 * Firecracker's boot timer: an MMIO page (the PlatformLayout's fixed 'boot-timer' window) where the guest's
 * init writes the byte 123 (`devmem 0xd0000000 8 123`). The VMM logs "guest boot
 * completed in N ms", N counted from the device's creation, which the plugin does
 * during VM assembly (before the kernel is loaded and vCPUs start), or from the last
 * reset() for a VM that restarts. Process start and vCPU start are reported too.
 * Reads return zeros; other writes are ignored and counted.
 */
export class BootTimer
  extends EventEmitter<BootTimesEvents>
  implements Device, Resettable, Snapshottable<BootTimerState>, BusDevice, BootTimeReporter
{
  readonly id: string;
  readonly stateSpec = BootTimerStateSpec;
  readonly metrics: BootTimerMetrics;
  /** Contract C4 (core/device Countable): marker and other writes (the boot time itself is no counter). */
  counters(): Record<string, number> {
    return { markers: this.metrics.markers, otherWrites: this.metrics.otherWrites };
  }
  private readonly logger?: Logger;
  private readonly now: () => number;
  private referenceMs: number;
  private startedMs: number | undefined;
  private first: BootTime | undefined;

  constructor(opts: BootTimerOptions) {
    super();
    this.id = opts.id;
    this.logger = opts.logger;
    this.now = opts.now ?? (() => performance.now());
    this.metrics = opts.metrics ?? new BootTimerMetrics();
    this.referenceMs = this.now();
  }

  get last(): BootTime | undefined {
    return this.first;
  }

  /** Records when the vCPUs started (lifecycle 'started'). */
  markStarted(): void {
    this.startedMs = this.now();
  }

  whenBooted(): Promise<BootTime> {
    if (this.first) return Promise.resolve(this.first);
    return new Promise((resolve) => this.once('boot', resolve));
  }

  read(_offset: bigint, data: Uint8Array): void {
    data.fill(0);
  }

  write(offset: bigint, data: Uint8Array): void {
    const isMarker =
      offset === 0n && data.length > 0 && data[0] === BOOT_MARKER_VALUE && data.subarray(1).every((b) => b === 0);
    if (!isMarker) {
      this.metrics.otherWrites++;
      return;
    }
    try {
      this.marker();
    } catch (err) {
      this.logger?.error({ err }, 'boot-timer: reporting the boot failed');
    }
  }

  private marker(): void {
    const at = this.now();
    this.metrics.markers++;
    const t: BootTime = {
      device: this.id,
      ms: round(at - this.referenceMs),
      sinceProcessStartMs: round(at),
      ...(this.startedMs !== undefined ? { sinceStartedMs: round(at - this.startedMs) } : {}),
      count: this.metrics.markers,
    };
    if (!this.first) {
      this.first = t;
      this.metrics.bootTimeMs = t.ms;
      this.logger?.info(
        { bootTimeMs: t.ms, sinceProcessStartMs: t.sinceProcessStartMs, sinceStartedMs: t.sinceStartedMs },
        `guest boot completed in ${t.ms} ms`,
      );
    } else if (this.metrics.markers <= 10) {
      this.logger?.debug({ count: t.count, ms: t.ms }, 'boot marker written again');
    }
    this.emitSafely(t);
  }

  private emitSafely(t: BootTime): void {
    for (const target of [this as EventEmitter<BootTimesEvents>, bootTimes]) {
      try {
        target.emit('boot', t);
      } catch (err) {
        this.logger?.error({ err }, 'boot-timer: a boot listener failed');
      }
    }
  }

  /** A restarting VM measures its next boot from now. */
  reset(): void {
    this.referenceMs = this.now();
    this.startedMs = undefined;
    this.first = undefined;
    this.metrics.markers = 0;
    this.metrics.bootTimeMs = undefined;
  }

  saveState(): BootTimerState {
    const b = this.first;
    return {
      markers: this.metrics.markers,
      boot: b
        ? {
            ms: b.ms,
            sinceProcessStartMs: b.sinceProcessStartMs,
            ...(b.sinceStartedMs !== undefined ? { sinceStartedMs: b.sinceStartedMs } : {}),
          }
        : null,
    };
  }

  /** Applies a validated state (core/state's restoreSnapshot validates untrusted input first). */
  loadState(s: BootTimerState): void {
    this.metrics.markers = s.markers;
    this.first = s.boot ? { device: this.id, count: 1, ...s.boot } : undefined;
    this.metrics.bootTimeMs = this.first?.ms;
  }
}

const round = (ms: number): number => Math.round(ms * 1000) / 1000;
