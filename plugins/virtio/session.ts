import type { EventFd } from '../../core/events/event-loop.js';
import type { Logger } from '../../core/logger.js';
import type { GuestMemory } from '../../core/memory/guest-memory.js';
import { LogRateLimiter, suppressedNote } from '../../core/ratelimit/log-limiter.js';
import type { VirtioDevice, VirtioInterrupt } from '../../core/virtio/virtio.js';
import { DeviceStatus } from './constants.js';
import { SplitQueue, type SplitQueueProgress } from './split-queue.js';
import { DeviceNegotiation } from './status.js';

/** What a VirtioSession works with; the transport owns all of it. */
export interface VirtioSessionDeps {
  /** Guest memory, resolved when the driver sets DRIVER_OK. */
  memory: () => GuestMemory;
  /** One eventfd per queue: the ioeventfd the hypervisor signals, and what a trapped notify writes. */
  queueEvents: readonly EventFd[];
  /** The transport's interrupts; signalConfigChange() tells the driver about DEVICE_NEEDS_RESET. */
  interrupt: VirtioInterrupt;
  /** Transport name for log lines ('virtio-pci'). */
  transport: string;
  logger?: Logger;
  /** Where to count (the transport's metrics object, which has these fields); default: a fresh one. */
  counters?: VirtioSessionCounters;
  /**
   * Per queue, at activation: an eventfd that interrupts the driver for that queue (an irqfd on its MSI-X
   * vector), handed to the device as VirtioActivation.callEvents; omitted: none.
   */
  callEvents?: () => readonly (EventFd | undefined)[];
  /** How long a reset waits for the device to drain before it is marked broken; default RESET_DRAIN_LIMIT_MS. */
  resetDrainLimitMs?: number;
}

/**
 * How long a reset may wait for requests in flight (a piece at the disk) before the device counts as broken: far
 * above a disk request's time here, under the minutes a driver would wait before giving up on its own.
 */
export const RESET_DRAIN_LIMIT_MS = 30_000;

/** Counters of one session (plain numbers; the transport copies them into its metrics). */
export interface VirtioSessionCounters {
  activations: number;
  resets: number;
  /** Times the device was marked DEVICE_NEEDS_RESET. */
  needsReset: number;
  /** Status writes the state machine refused. */
  refusedStatusWrites: number;
  /** Resets that had to wait for requests in flight before device_status read 0. */
  drainedResets: number;
  /** Resets whose wait passed RESET_DRAIN_LIMIT_MS: the device was marked broken. */
  brokenResets: number;
}

/** A reset that waits for the device's requests in flight: the status the driver reads meanwhile. */
interface ResetDrain {
  /** The status before the reset (non-zero: the device had been activated). */
  status: number;
  /** The wait passed its bound: the driver reads DEVICE_NEEDS_RESET. */
  broken: boolean;
  timer?: ReturnType<typeof setTimeout>;
}

/**
 * The transport-neutral half of a virtio transport (virtio 1.2 §2.1, §3.1): device status and feature
 * negotiation, the split queues whose layout the driver writes, activation at DRIVER_OK (queues
 * validated against guest memory, then VirtioDevice.activate), DEVICE_NEEDS_RESET and reset.
 * The transport keeps its registers (selectors, interrupt status, vectors) and calls this.
 * Callbacks of an activation that a reset ended go quiet (an epoch counter).
 *
 * Reset completes when the device has drained (virtio 1.2 §2.1.1, §4.1.4.3.2: the driver writes 0 and waits until
 * device_status reads 0): while a request of the ended activation is still in flight (`VirtioDevice.quiet` false,
 * e.g. a virtio-blk piece at the disk that may still write guest memory), `driverStatus` reads the status before the
 * reset and status writes other than 0 are refused; once `idle()` resolves it reads 0. A device that does not drain
 * within RESET_DRAIN_LIMIT_MS is marked broken (logged once): it reads DEVICE_NEEDS_RESET until it drains.
 */
export class VirtioSession {
  negotiation: DeviceNegotiation;
  readonly queues: SplitQueue[];
  readonly counters: VirtioSessionCounters;
  /** A guest can make a device fail on every access: those warnings are rate-limited. */
  readonly logLimit = new LogRateLimiter();
  /** Bumped by every reset, so callbacks of an earlier activation go quiet. */
  private epoch = 0;
  private activeEpoch: number | undefined;
  /** The reset that still waits for the device to drain, if any. */
  private drain: ResetDrain | undefined;
  private brokenLogged = false;

  constructor(
    readonly device: VirtioDevice,
    private readonly deps: VirtioSessionDeps,
  ) {
    this.negotiation = new DeviceNegotiation(device.deviceFeatures);
    this.queues = device.queueMaxSizes.map((max, i) => new SplitQueue(i, max));
    this.counters = deps.counters ?? {
      activations: 0,
      resets: 0,
      needsReset: 0,
      refusedStatusWrites: 0,
      drainedResets: 0,
      brokenResets: 0,
    };
  }

  /** Whether the device is serving its queues (DRIVER_OK accepted, no reset since). */
  get activated(): boolean {
    return this.activeEpoch !== undefined;
  }

  get status(): number {
    return this.negotiation.status;
  }

  /**
   * What the driver reads in device_status: the status, except while a reset waits for the device to drain (the
   * status before the reset, so a driver polling for 0 waits; DEVICE_NEEDS_RESET once the wait passed its bound).
   */
  get driverStatus(): number {
    if (!this.drain) return this.negotiation.status;
    return this.drain.broken ? DeviceStatus.DEVICE_NEEDS_RESET : this.drain.status;
  }

  /** Whether a reset still waits for requests of the ended activation (driverStatus is not 0 yet). */
  get resetPending(): boolean {
    return this.drain !== undefined;
  }

  /** Whether the driver may still change queue layouts (FEATURES_OK, before DRIVER_OK, no failure). */
  get queuesConfigurable(): boolean {
    return this.negotiation.queuesConfigurable;
  }

  /**
   * A driver's status write: 0 resets (the transport then resets its own registers when this returns
   * 'reset'), DRIVER_OK activates. Returns what happened; 'ignored' writes are counted and logged at debug.
   */
  writeStatus(v: number): 'reset' | 'activate' | 'none' | 'ignored' {
    if (this.drain) {
      if (v === 0) return 'none'; // the reset is under way
      this.counters.refusedStatusWrites++;
      this.deps.logger?.debug(
        { device: this.device.id, status: v },
        `${this.deps.transport} status write refused: the reset still waits for requests in flight`,
      );
      return 'ignored';
    }
    const before = this.negotiation.status; // a write of 0 clears it
    const out = this.negotiation.writeStatus(v);
    switch (out.action) {
      case 'reset':
        this.resetFrom(before);
        break;
      case 'activate':
        this.activate();
        break;
      case 'ignored':
        this.counters.refusedStatusWrites++;
        this.deps.logger?.debug(
          { device: this.device.id, status: v, reason: out.reason },
          `${this.deps.transport} status write refused`,
        );
        break;
      case 'none':
        break;
    }
    return out.action;
  }

  /** Validates the queues and activates the device (from DRIVER_OK, or a restore with each queue's progress). */
  activate(progress?: readonly (SplitQueueProgress | undefined)[]): void {
    const epoch = this.epoch;
    const features = this.negotiation.driverFeatures;
    let memory: GuestMemory;
    try {
      memory = this.deps.memory();
      this.queues.forEach((q, i) => q.activate(memory, features, progress?.[i]));
    } catch (err) {
      this.needsReset(`queue setup refused: ${(err as Error)?.message ?? String(err)}`);
      return;
    }
    this.activeEpoch = epoch;
    this.counters.activations++;
    try {
      this.device.activate({
        features,
        memory,
        queues: this.queues,
        queueEvents: [...this.deps.queueEvents],
        interrupt: this.deps.interrupt,
        callEvents: this.deps.callEvents?.(),
        needsReset: (reason: string) => {
          if (this.epoch === epoch) this.needsReset(reason);
        },
      });
    } catch (err) {
      this.needsReset(`device activation failed: ${(err as Error)?.message ?? String(err)}`);
    }
  }

  /** Marks DEVICE_NEEDS_RESET (logged, rate-limited); after DRIVER_OK the driver learns it by a config change. */
  needsReset(reason: string): void {
    if (this.negotiation.has(DeviceStatus.DEVICE_NEEDS_RESET)) return;
    this.counters.needsReset++;
    this.logLimit.log('reset', (suppressed) =>
      this.deps.logger?.warn(
        { device: this.device.id, reason, suppressed },
        `virtio device needs reset${suppressedNote(suppressed)}`,
      ),
    );
    this.negotiation.markNeedsReset();
    if (this.negotiation.has(DeviceStatus.DRIVER_OK)) this.deps.interrupt.signalConfigChange();
  }

  /** Back to the power-on state: the device stops, negotiation and queues start over, stale kicks are dropped. */
  reset(): void {
    this.resetFrom(this.negotiation.status);
  }

  private resetFrom(before: number): void {
    this.stop();
    this.counters.resets++;
    this.negotiation = new DeviceNegotiation(this.device.deviceFeatures);
    for (const q of this.queues) q.reset();
    for (const ev of this.deps.queueEvents) ev.read(); // drop kicks of the old session
    if (before !== 0 && this.device.quiet === false) this.waitForDrain(before);
  }

  /** Holds driverStatus at `before` until the device is idle (bounded: then it is marked broken). */
  private waitForDrain(before: number): void {
    if (this.drain) return; // an earlier reset still waits
    const drain: ResetDrain = { status: before, broken: false };
    this.drain = drain;
    this.counters.drainedResets++;
    const limit = this.deps.resetDrainLimitMs ?? RESET_DRAIN_LIMIT_MS;
    const done = () => {
      if (this.drain !== drain) return;
      clearTimeout(drain.timer);
      this.drain = undefined;
      if (drain.broken)
        this.deps.logger?.warn(
          { device: this.device.id },
          `${this.deps.transport}: the broken device drained after all`,
        );
    };
    drain.timer = setTimeout(() => {
      if (this.drain !== drain) return;
      drain.broken = true;
      this.counters.brokenResets++;
      if (this.brokenLogged) return;
      this.brokenLogged = true;
      this.deps.logger?.error(
        { device: this.device.id, limitMs: limit },
        `${this.deps.transport}: a reset waited ${limit} ms for requests in flight; device marked broken ` +
          '(device_status reads DEVICE_NEEDS_RESET until they end)',
      );
    }, limit);
    drain.timer.unref?.();
    const idle = this.device.idle?.() ?? Promise.resolve();
    idle.then(done, done);
  }

  /** Ends the current activation (device reset), keeping negotiation and queue layout (before a restore). */
  stop(): void {
    this.epoch++;
    const wasActive = this.activated;
    this.activeEpoch = undefined;
    if (!wasActive) return;
    try {
      this.device.reset();
    } catch (err) {
      this.deps.logger?.warn({ err, device: this.device.id }, 'virtio device reset failed');
    }
  }

  /** Restores negotiation from a validated state (the caller loads the queues and re-activates). */
  loadNegotiation(s: { status: number; driverFeatures: bigint }): void {
    this.negotiation = new DeviceNegotiation(this.device.deviceFeatures);
    this.negotiation.load(s);
  }
}
