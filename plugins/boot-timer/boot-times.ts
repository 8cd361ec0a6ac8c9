import { EventEmitter } from 'eventemitter3';

/** One boot measured by a boot-timer device. */
export interface BootTime {
  /** The device's id (plugin instance), telling VMs in one process apart. */
  readonly device: string;
  /** Milliseconds from the reference point (VM assembly, or the last reset) to the guest's marker. */
  readonly ms: number;
  /** Milliseconds from process start (performance.timeOrigin) to the marker. */
  readonly sinceProcessStartMs: number;
  /** Milliseconds from lifecycle 'started' (vCPUs running) to the marker, when the VM reported it. */
  readonly sinceStartedMs?: number;
  /** 1 for the first marker since the reference point, then 2, 3... */
  readonly count: number;
}

/** Events of the boot-time record: `boot` once the guest wrote the marker. */
export interface BootTimesEvents {
  boot: (t: BootTime) => void;
}

/**
 * Process-wide hook for tests and benchmarks that run VMs in this process:
 * `bootTimes.on('boot', (t) => ...)`. Every boot-timer device emits here, and on
 * the `BootTimer` token's object of its own VM.
 */
export const bootTimes = new EventEmitter<BootTimesEvents>();
