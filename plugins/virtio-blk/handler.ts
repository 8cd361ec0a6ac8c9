import { GuestAddress } from '../../core/address.js';
import type { VirtQueue, VirtioInterrupt } from '../../core/virtio/virtio.js';
import type { RateLimiter } from '../../core/ratelimit/rate-limiter.js';
import { ServedQueue } from '../virtio/served-queue.js';
import { BlkStatus, type BlkStatusValue, MAX_INFLIGHT_BYTES, MAX_IO_PIECE, QUEUE_BUDGET } from './constants.js';
import { executeRequest, type ExecuteOptions } from './executor.js';
import type { BlkQueueMetrics } from './metrics.js';
import { parseRequest, usedLength, type BlkRequest, type RequestContext } from './request.js';

/**
 * What one request queue's handler works with: the queue and its interrupt, the request parsing and execution context,
 * the rate limiter, metrics, and the device's needs-reset action.
 */
export interface QueueHandlerDeps {
  readonly queue: VirtQueue;
  readonly interrupt: VirtioInterrupt;
  readonly ctx: RequestContext;
  readonly exec: ExecuteOptions;
  readonly limiter: RateLimiter;
  readonly metrics: BlkQueueMetrics;
  /** The driver broke the rules: the transport sets DEVICE_NEEDS_RESET. */
  readonly needsReset: (reason: string) => void;
  /** Runs `cb` after the current I/O callbacks (setImmediate); replaceable in tests. */
  readonly defer?: (cb: () => void) => void;
}

/**
 * Serves one virtqueue of a virtio-blk device. A wakeup (queue notification, rate
 * limiter timer, or the yield after QUEUE_BUDGET chains) pops chains, validates them
 * and starts their I/O without waiting for it. Completions arriving in the same loop
 * turn are returned to the used ring together (the last one in flight returns them at
 * once, earlier ones wait for a setImmediate), with at most one interrupt (and only
 * when the driver asked: needsNotification, EVENT_IDX aware). A request the rate
 * limiter refuses is kept (never dropped) and the queue pauses until the limiter's
 * timer calls process() again. Reads and writes in flight are bounded too: each counts
 * the piece it has at the disk (at most MAX_IO_PIECE), and past MAX_INFLIGHT_BYTES the next
 * one is kept the same way until a completion makes room (the queue itself refuses more than
 * queue-size chains in use). After a driver error the handler stops touching the queue.
 */
export class BlkQueueHandler {
  private deferred?: BlkRequest;
  private inflight = 0;
  private inflightBytes = 0;
  /** A completion scheduled process() to retry the request kept for lack of in-flight room. */
  private resumePending = false;
  private completed: { head: number; len: number }[] = [];
  private flushPending = false;
  /** Inside process(): completions wait for its closing flush. */
  private processing = false;
  private idleWaiters: (() => void)[] = [];
  private readonly defer: (cb: () => void) => void;
  private readonly served: ServedQueue;
  /** The device's execute options, and a stop check: a reset ends a large request between its pieces. */
  private readonly exec: ExecuteOptions;

  constructor(private readonly d: QueueHandlerDeps) {
    this.defer =
      d.defer ??
      ((cb) => {
        setImmediate(cb);
      });
    this.served = new ServedQueue({
      ...d,
      onStop: () => this.release(),
      onInterrupt: () => d.metrics.interrupts++,
    });
    this.exec = { ...d.exec, stopped: () => this.served.stopped };
  }

  get index(): number {
    return this.d.queue.index;
  }
  get inFlight(): number {
    return this.inflight;
  }
  /** Bytes of read/write pieces at the disk now (see MAX_INFLIGHT_BYTES). */
  get inFlightBytes(): number {
    return this.inflightBytes;
  }
  get throttled(): boolean {
    return this.deferred !== undefined;
  }

  /** One wakeup: serve what the driver made available. */
  process(): void {
    if (this.served.stopped) return;
    this.processing = true;
    this.served.run(() => this.serve());
    this.processing = false;
    this.flush();
  }

  /** Pops, validates and starts requests until the ring is empty, the budget is spent or one must wait. */
  private serve(): void {
    const q = this.d.queue;
    if (this.deferred) {
      if (!this.start(this.deferred)) return;
      this.deferred = undefined;
    }
    let handled = 0;
    do {
      q.disableNotification();
      for (let chain = q.pop(); chain; chain = q.pop()) {
        const req = parseRequest(this.d.ctx, chain);
        if (req.kind === 'fatal') {
          this.served.fail(req.reason);
          return;
        }
        this.d.metrics.requests++;
        if (!this.start(req)) return;
        if (++handled >= QUEUE_BUDGET) {
          this.defer(() => this.process());
          return;
        }
      }
    } while (q.enableNotification());
  }

  /** Charges the rate limiter and starts the request; false when it must wait (it is kept as `deferred`). */
  private start(req: BlkRequest): boolean {
    const bytes = req.kind === 'read' || req.kind === 'write' ? req.length : 0;
    const charge = Math.min(bytes, MAX_IO_PIECE);
    if (this.inflightBytes > 0 && this.inflightBytes + charge > MAX_INFLIGHT_BYTES) {
      this.deferred = req; // a completion calls process() again
      return false;
    }
    if (!this.served.consume(this.d.limiter, bytes, () => this.process())) {
      this.d.metrics.throttled++;
      this.deferred = req;
      return false;
    }
    if (req.kind === 'reject') {
      this.complete(req, req.status);
      return true;
    }
    this.inflight++;
    this.inflightBytes += charge;
    void executeRequest(req, this.exec).then((status) => {
      this.inflight--;
      this.inflightBytes -= charge;
      this.complete(req, status);
      this.resumeKept();
      // The last request in flight returns the batch at once: a read the page cache answered
      // completes in this microtask checkpoint, and one more loop turn (setImmediate) would only
      // delay its interrupt. While others are in flight, completions wait for the deferred flush
      // so a batch still takes one interrupt.
      if (this.inflight === 0 && !this.processing) {
        this.flush();
        return;
      }
      if (!this.flushPending) {
        this.flushPending = true;
        this.defer(() => {
          this.flushPending = false;
          this.flush();
        });
      }
    });
    return true;
  }

  /** After a completion: retry the request kept for lack of in-flight room (not one the limiter's timer owns). */
  private resumeKept(): void {
    if (!this.deferred || this.served.waiting || this.resumePending || this.served.stopped) return;
    this.resumePending = true;
    this.defer(() => {
      this.resumePending = false;
      this.process();
    });
  }

  /** Writes the status byte and queues the used entry for the next flush. */
  private complete(req: BlkRequest, status: BlkStatusValue): void {
    if (this.served.stopped) return;
    if (status === BlkStatus.IOERR) this.d.metrics.ioErrors++;
    if (status === BlkStatus.UNSUPP) this.d.metrics.unsupported++;
    try {
      const memory = this.d.ctx.memory;
      const at = req.statusAddr;
      const view = typeof at === 'number' ? memory.sliceAt?.(at, 1, 'write') : undefined;
      if (view) view[0] = status;
      else memory.writeU8(typeof at === 'number' ? GuestAddress.of(at) : at, status);
    } catch (err) {
      this.served.fail(`status byte of chain ${req.head}: ${(err as Error).message}`);
      return;
    }
    this.completed.push({ head: req.head, len: usedLength(req, status) });
  }

  /** Returns finished chains to the used ring, then interrupts once if the driver wants it. */
  private flush(): void {
    if (!this.served.stopped && this.completed.length > 0) {
      const batch = this.completed;
      this.completed = [];
      this.served.run(() => {
        for (const c of batch) this.served.addUsed(c.head, c.len);
      });
      this.served.signal();
    }
    this.checkIdle();
  }

  /** Stops serving (device reset or driver error): nothing more touches the queue or guest memory. */
  stop(): void {
    this.served.stop();
  }

  /** What stopping drops: the kept request, completions not yet returned (ServedQueue cancels the limiter wait). */
  private release(): void {
    this.deferred = undefined;
    this.completed = [];
    this.checkIdle();
  }

  /** No request in flight, deferred or waiting to be returned: the queue state is complete (snapshots). */
  get quiet(): boolean {
    return this.isIdle();
  }

  /** Resolves when no request is in flight, deferred or waiting to be returned (tests, pause, snapshot). */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((res) => this.idleWaiters.push(res));
  }

  private isIdle(): boolean {
    return (
      this.inflight === 0 && // after a stop too: a piece at the disk may still write guest memory
      this.completed.length === 0 &&
      !this.deferred &&
      !this.flushPending &&
      !this.resumePending
    );
  }

  private checkIdle(): void {
    if (!this.isIdle()) return;
    const w = this.idleWaiters;
    this.idleWaiters = [];
    for (const r of w) r();
  }
}
