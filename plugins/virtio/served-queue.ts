import type { Disposable } from '../../core/bus/bus.js';
import type { RateLimiter } from '../../core/ratelimit/rate-limiter.js';
import type { VirtQueue, VirtioInterrupt } from '../../core/virtio/virtio.js';

/** What a ServedQueue needs: the queue, the transport's interrupt and reset request, and the device's hooks. */
export interface ServedQueueDeps {
  readonly queue: VirtQueue;
  readonly interrupt: VirtioInterrupt;
  /** The driver broke the rules: the transport sets DEVICE_NEEDS_RESET (VirtioActivation.needsReset). */
  readonly needsReset: (reason: string) => void;
  /** Prefix of failure reasons, e.g. 'RX queue 0'; default `queue <index>`. */
  readonly label?: string;
  /** Called once when the queue stops (reset or driver error): the device drops what it holds for it. */
  readonly onStop?: () => void;
  /** Called for each interrupt raised (metrics). */
  readonly onInterrupt?: () => void;
}

/**
 * The tail every device queue handler shares (virtio-blk, virtio-net RX and TX): chains go
 * back to the used ring, then one interrupt if the driver asked for it (needsNotification,
 * EVENT_IDX aware); a driver error (a broken ring, a buffer outside guest memory, any
 * exception while serving) stops the queue and asks the transport for DEVICE_NEEDS_RESET;
 * once stopped, nothing here touches the queue again. A rate limiter that refuses a request
 * wakes the queue once it has room (consume), and stopping cancels that wait. What a device
 * does with each chain stays in its handler; this class owns the stop / fail / signal part.
 */
export class ServedQueue {
  private halted = false;
  private usedAdded = false;
  private waiter?: Disposable;

  constructor(private readonly d: ServedQueueDeps) {}

  /** The queue served. */
  get queue(): VirtQueue {
    return this.d.queue;
  }

  /** Whether the queue stopped (device reset or driver error). */
  get stopped(): boolean {
    return this.halted;
  }

  /** Whether a rate limiter's wake-up is armed (see consume). */
  get waiting(): boolean {
    return this.waiter !== undefined;
  }

  /**
   * One wakeup: runs `step` (see run), then, when `signal` is true, interrupts the driver
   * for what went back (see signal). `signal` false leaves the interrupt to a later signal().
   */
  serve(step: () => void, signal = true): void {
    this.run(step);
    if (signal) this.signal();
  }

  /**
   * Runs one step of serving the queue. An exception from `step` fails the queue with
   * `<label>: <message>` (stop, then needsReset); it never escapes. No-op once stopped.
   */
  run(step: () => void): void {
    if (this.halted) return;
    try {
      step();
    } catch (err) {
      this.fail(`${this.label}: ${(err as Error)?.message ?? String(err)}`);
    }
  }

  /**
   * Charges `limiter` with `bytes` and one operation. When it refuses, arms one wake-up that
   * calls `wake` once the limiter has room (one at a time; stop() cancels it) and returns false:
   * the caller keeps its request and pauses the queue.
   */
  consume(limiter: Pick<RateLimiter, 'tryConsume' | 'whenReady'>, bytes: number, wake: () => void): boolean {
    if (limiter.tryConsume(bytes, 1)) return true;
    this.waiter ??= limiter.whenReady(
      () => {
        this.waiter = undefined;
        wake();
      },
      bytes,
      1,
    );
    return false;
  }

  /** Returns a chain to the driver with `len` bytes written; the next signal() may interrupt for it. */
  addUsed(head: number, len: number): void {
    this.d.queue.addUsed(head, len);
    this.usedAdded = true;
  }

  /**
   * Interrupts the driver once if chains went back since the last call and the driver wants
   * to hear of it. Returns whether it interrupted. A failure fails the queue.
   */
  signal(): boolean {
    if (!this.usedAdded || this.halted) return false;
    this.usedAdded = false;
    let raised = false;
    this.run(() => {
      if (!this.d.queue.needsNotification()) return;
      this.d.onInterrupt?.();
      this.d.interrupt.signalUsedQueue(this.d.queue.index);
      raised = true;
    });
    return raised;
  }

  /** The driver broke the rules: stop serving and ask the transport for DEVICE_NEEDS_RESET (once). */
  fail(reason: string): void {
    if (this.halted) return;
    this.stop();
    this.d.needsReset(reason);
  }

  /** Stops serving (device reset or driver error): cancels a limiter wait, calls onStop once. */
  stop(): void {
    if (this.halted) return;
    this.halted = true;
    this.usedAdded = false;
    this.waiter?.dispose();
    this.waiter = undefined;
    this.d.onStop?.();
  }

  private get label(): string {
    return this.d.label ?? `queue ${this.d.queue.index}`;
  }
}
