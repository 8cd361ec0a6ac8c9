import type { Disposable } from '../../core/bus/bus.js';
import type { DiskBackend } from '../../core/block/disk.js';
import type { EventLoop } from '../../core/events/event-loop.js';
import type { Logger } from '../../core/logger.js';
import { LogRateLimiter, suppressedNote } from '../../core/ratelimit/log-limiter.js';
import { RateLimiter, type RateLimiterClock, type RateLimiterConfig } from '../../core/ratelimit/rate-limiter.js';
import {
  VIRTIO_F_RING_EVENT_IDX,
  VIRTIO_F_RING_INDIRECT_DESC,
  VIRTIO_F_VERSION_1,
  VirtioDeviceType,
  type VirtioActivation,
  type VirtioDevice,
} from '../../core/virtio/virtio.js';
import { BLK_CONFIG_SIZE, buildConfigSpace } from './config-space.js';
import {
  SECTOR_SIZE,
  VIRTIO_BLK_F_BLK_SIZE,
  VIRTIO_BLK_F_DISCARD,
  VIRTIO_BLK_F_FLUSH,
  VIRTIO_BLK_F_MQ,
  VIRTIO_BLK_F_RO,
  VIRTIO_BLK_F_SEG_MAX,
  VIRTIO_BLK_F_WRITE_ZEROES,
} from './constants.js';
import { VirtioBlkError } from './errors.js';
import { BlkQueueHandler } from './handler.js';
import { BlkMetrics } from './metrics.js';
import { BlkStateSpec, checkBlkState, type BlkState } from './state.js';
import type { Snapshottable } from '../../core/state/snapshottable.js';

/**
 * What a VirtioBlk is built with: its id, the disk it takes over, the identity and queue shape it presents to the
 * driver, rate limits, and test seams.
 */
export interface VirtioBlkOptions {
  readonly id: string;
  /** The opened disk; the device owns it from now on and closes it in destroy(). */
  readonly disk: DiskBackend;
  /** Present the disk read-only even when the backend is writable. */
  readonly readOnly?: boolean;
  /** GET_ID answer (at most 20 bytes are sent). */
  readonly serial?: string;
  readonly numQueues?: number;
  readonly queueSize?: number;
  readonly rateLimiter?: RateLimiterConfig;
  /** Clock for the rate limiter and the log rate limit (tests). */
  readonly clock?: RateLimiterClock;
  /** Replaces setImmediate for completion batching (tests). */
  readonly defer?: (cb: () => void) => void;
}

/**
 * A virtio-blk device (virtio 1.2 §5.2, device type 2) over a DiskBackend, independent
 * of its transport. One handler per queue (MQ), each woken by its own ioeventfd; all
 * queues share one rate limiter. (Not a core Device itself: both interfaces name
 * an `activate`; the plugin registers a small Device wrapper whose destroy() closes the disk.) A disk the
 * backend opened read-only, or one the config marks read-only, refuses writes whether or not the driver
 * negotiated RO.
 */
export class VirtioBlk implements VirtioDevice, Snapshottable<BlkState> {
  /** The schema and version of its saved state (core/state; the transport nests it in its own). */
  readonly stateSpec = BlkStateSpec;
  readonly deviceType = VirtioDeviceType.block;
  readonly queueMaxSizes: readonly number[];
  readonly deviceFeatures: bigint;
  readonly configSize = BLK_CONFIG_SIZE;
  readonly metrics: BlkMetrics;
  /** Contract C4 (core/device Countable): the sum over its queues (the transport lists it under its own id). */
  counters(): Record<string, number> {
    return { ...this.metrics.total() };
  }
  readonly readOnly: boolean;
  private readonly config: Uint8Array;
  private readonly limiter: RateLimiter;
  /**
   * A guest can repeat a failing request (or reset and break the queue again) forever: those log lines are
   * rate-limited.
   */
  private readonly logLimit: LogRateLimiter;
  private handlers: BlkQueueHandler[] = [];
  /** Handlers stopped (reset, re-activation) while a piece was still at the disk: idle() and quiet wait for them. */
  private draining: BlkQueueHandler[] = [];
  private watches: Disposable[] = [];
  private destroyed = false;

  constructor(
    private readonly opts: VirtioBlkOptions,
    private readonly loop: EventLoop,
    private readonly logger?: Logger,
  ) {
    const numQueues = opts.numQueues ?? 1;
    const queueSize = opts.queueSize ?? 256;
    if (!Number.isInteger(numQueues) || numQueues < 1 || numQueues > 64) {
      throw new VirtioBlkError('Config', `${opts.id}: numQueues ${numQueues} must be 1..64`, { numQueues });
    }
    if (!Number.isInteger(queueSize) || queueSize < 4 || queueSize > 32768 || (queueSize & (queueSize - 1)) !== 0) {
      throw new VirtioBlkError('Config', `${opts.id}: queueSize ${queueSize} must be a power of two in 4..32768`, {
        queueSize,
      });
    }
    const disk = opts.disk;
    if (disk.size < BigInt(SECTOR_SIZE))
      throw new VirtioBlkError('Config', `${opts.id}: the disk is smaller than one sector`, { size: disk.size });
    this.readOnly = (opts.readOnly ?? false) || disk.readOnly;
    this.queueMaxSizes = Array.from({ length: numQueues }, () => queueSize);
    let f =
      VIRTIO_F_VERSION_1 |
      VIRTIO_F_RING_EVENT_IDX |
      VIRTIO_F_RING_INDIRECT_DESC |
      VIRTIO_BLK_F_SEG_MAX |
      VIRTIO_BLK_F_BLK_SIZE |
      VIRTIO_BLK_F_FLUSH;
    if (this.readOnly) f |= VIRTIO_BLK_F_RO;
    else {
      if (disk.supportsDiscard) f |= VIRTIO_BLK_F_DISCARD;
      if (disk.supportsWriteZeroes) f |= VIRTIO_BLK_F_WRITE_ZEROES;
    }
    if (numQueues > 1) f |= VIRTIO_BLK_F_MQ;
    this.deviceFeatures = f;
    this.config = buildConfigSpace({
      diskSize: disk.size,
      blockSize: disk.blockSize,
      segMax: queueSize - 2,
      numQueues,
    });
    this.metrics = new BlkMetrics(numQueues);
    this.limiter = new RateLimiter(opts.rateLimiter ?? {}, opts.clock);
    this.logLimit = new LogRateLimiter(undefined, opts.clock ? () => opts.clock!.now() : undefined);
  }

  get id(): string {
    return this.opts.id;
  }
  get disk(): DiskBackend {
    return this.opts.disk;
  }

  readConfig(offset: number, data: Uint8Array): void {
    data.fill(0);
    if (offset < 0 || offset >= this.config.length) return;
    data.set(this.config.subarray(offset, Math.min(offset + data.length, this.config.length)));
  }

  /** Every field is read-only (writeback / WCE is not offered): writes are ignored. */
  writeConfig(_offset: number, _data: Uint8Array): void {}

  activate(a: VirtioActivation): void {
    this.stopQueues();
    if (this.destroyed) return;
    const capacity = this.opts.disk.size / BigInt(SECTOR_SIZE);
    const ctx = { memory: a.memory, capacity, readOnly: this.readOnly, features: a.features };
    const log = this.logger?.child({ device: this.id });
    const count = Math.min(a.queues.length, this.queueMaxSizes.length);
    for (let i = 0; i < count; i++) {
      const metrics = this.metrics.queue(i);
      const handler = new BlkQueueHandler({
        queue: a.queues[i],
        interrupt: a.interrupt,
        ctx,
        exec: {
          disk: this.opts.disk,
          serial: this.opts.serial ?? '',
          writeThrough: (a.features & VIRTIO_BLK_F_FLUSH) === 0n,
          metrics,
          onError: (err, req) =>
            this.logLimit.log('io', (suppressed) =>
              log?.warn(
                { err, queue: i, kind: req.kind, suppressed },
                `disk I/O failed; guest gets IOERR${suppressedNote(suppressed)}`,
              ),
            ),
        },
        limiter: this.limiter,
        metrics,
        needsReset: (reason) => {
          this.logLimit.log('reset', (suppressed) =>
            log?.warn(
              { queue: i, reason, suppressed },
              `driver error; device needs reset${suppressedNote(suppressed)}`,
            ),
          );
          a.needsReset(reason);
        },
        defer: this.opts.defer,
      });
      this.handlers.push(handler);
      const ev = a.queueEvents[i];
      if (ev) {
        this.watches.push(
          this.loop.watch(ev.fd, { readable: true }, () => {
            ev.read();
            handler.process();
          }),
        );
      }
    }
    // Buffers may have been made available before DRIVER_OK.
    for (const h of this.handlers) h.process();
  }

  /** Serves queue `i` now (what its ioeventfd does). */
  process(i = 0): void {
    this.handlers[i]?.process();
  }

  reset(): void {
    this.stopQueues();
  }

  private stopQueues(): void {
    for (const w of this.watches) w.dispose();
    this.watches = [];
    for (const h of this.handlers) h.stop();
    this.draining = [...this.draining, ...this.handlers].filter((h) => !h.quiet);
    this.handlers = [];
    this.limiter.dispose();
  }

  /** Its shape as the driver sees it; refuses while a request is in flight (its queue state would be incomplete). */
  saveState(): BlkState {
    const busy = [...this.handlers, ...this.draining].find((h) => !h.quiet);
    if (busy)
      throw new VirtioBlkError('State', `queue ${busy.index} has requests in flight: pause and await idle() first`, {
        queue: busy.index,
      });
    return this.shape();
  }

  checkState(s: BlkState): void {
    checkBlkState(s, this.shape());
  }

  /** Nothing to apply beyond the shape checkState compared: the queues are the transport's. */
  loadState(_s: BlkState): void {}

  private shape(): BlkState {
    return {
      capacity: this.opts.disk.size / BigInt(SECTOR_SIZE),
      readOnly: this.readOnly,
      blockSize: this.opts.disk.blockSize,
      numQueues: this.queueMaxSizes.length,
      queueSize: this.queueMaxSizes[0]!,
    };
  }

  /** True while no queue has a request in flight or held back (saveState works then). */
  get quiet(): boolean {
    return this.handlers.every((h) => h.quiet) && this.draining.every((h) => h.quiet);
  }

  /** Resolves when every queue has no request in flight or held back. */
  async idle(): Promise<void> {
    await Promise.all([...this.handlers, ...this.draining].map((h) => h.idle()));
    this.draining = this.draining.filter((h) => !h.quiet);
  }

  /**
   * Makes every write already completed to the guest durable in the disk's file (the disk's flush: a qcow2 image
   * writes the metadata it caches until the guest's FLUSH). Pausing the VM for a snapshot calls it once the device
   * is idle, so the image files match the paused guest.
   */
  async persist(): Promise<void> {
    if (!this.readOnly && !this.destroyed) await this.opts.disk.flush();
  }

  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    this.stopQueues();
    await this.opts.disk.close();
  }
}
