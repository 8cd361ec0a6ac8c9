import type { Disposable } from '../../core/bus/bus.js';
import type { BalloonControl, BalloonStatus } from '../../core/device/balloon.js';
import type { EventLoop } from '../../core/events/event-loop.js';
import type { Logger } from '../../core/logger.js';
import { LogRateLimiter, suppressedNote } from '../../core/ratelimit/log-limiter.js';
import type { Snapshottable } from '../../core/state/snapshottable.js';
import {
  VIRTIO_F_RING_EVENT_IDX,
  VIRTIO_F_RING_INDIRECT_DESC,
  VIRTIO_F_VERSION_1,
  VirtioDeviceType,
  type VirtioActivation,
  type VirtioDevice,
  type VirtioInterrupt,
} from '../../core/virtio/virtio.js';
import {
  BALLOON_CONFIG_SIZE,
  BALLOON_PAGE,
  Cfg,
  VIRTIO_BALLOON_F_DEFLATE_ON_OOM,
  VIRTIO_BALLOON_F_REPORTING,
  VIRTIO_BALLOON_F_STATS_VQ,
} from './constants.js';
import { VirtioBalloonError } from './errors.js';
import { BalloonQueues, type BalloonQueueHooks } from './queues.js';
import { nativeAdvise, releasePages, type Advise, type GuestPages } from './release.js';
import { BalloonStateSpec, checkBalloonState, type BalloonState } from './state.js';
import { zeroBalloonMetrics, type BalloonMetrics } from './metrics.js';

/** What a VirtioBalloon is built with. */
export interface VirtioBalloonOptions {
  readonly id: string;
  /** Bytes of guest RAM: the largest target allowed. */
  readonly memorySize: bigint;
  /** Initial target in bytes (rounded down to 4 KiB pages). */
  readonly target?: bigint;
  readonly queueSize?: number;
  readonly stats?: boolean;
  /** Ask for statistics every this many seconds (0: only on requestStats()). */
  readonly statsIntervalS?: number;
  readonly deflateOnOom?: boolean;
  readonly freePageReporting?: boolean;
  /** The madvise call (tests). */
  readonly advise?: Advise;
  /** Runs `cb` on a later loop turn (setImmediate); replaceable in tests. */
  readonly defer?: (cb: () => void) => void;
}

/**
 * A virtio memory balloon (virtio 1.2 §5.5, device type 5), independent of its transport. The host
 * sets a target (`num_pages`, config change interrupt); the guest driver inflates by sending the
 * PFNs of pages it gave up on the inflate queue, and the device gives the memory behind them back
 * to the host (madvise DONTNEED for private anonymous RAM, REMOVE for memfd/file RAM), so the
 * VMM's resident memory drops; deflating (the deflate queue) needs nothing from the host, the pages
 * fault back in as zeros when the guest touches them. Optional: the statistics queue (the guest's
 * memory statistics, on request or on a timer) and free page reporting (free guest memory handed
 * back without inflating). Every PFN and range is checked against guest RAM; what lies outside it
 * or in read-only memory is refused and counted, never advised. It is the VM's BalloonControl.
 */
export class VirtioBalloon implements VirtioDevice, Snapshottable<BalloonState>, BalloonControl {
  readonly deviceType = VirtioDeviceType.balloon;
  readonly queueMaxSizes: readonly number[];
  readonly deviceFeatures: bigint;
  readonly configSize = BALLOON_CONFIG_SIZE;
  /** The schema and version of its saved state (the transport nests it in its own). */
  readonly stateSpec = BalloonStateSpec;
  readonly metrics: BalloonMetrics = zeroBalloonMetrics();
  /** Config-change interrupts before and after activation (the transport's attachment gives it). */
  configInterrupt?: VirtioInterrupt;
  private numPages: number;
  private actual = 0;
  private lastStats?: Record<string, number>;
  private statsAt?: number;
  private queues?: BalloonQueues;
  /** The driver's statistics chain held by the device across a restore (see loadState). */
  private restoredStatsHead?: number;
  private statsWaiters: { resolve: (s: Record<string, number>) => void; reject: (e: Error) => void }[] = [];
  private statsTimer?: Disposable;
  private readonly advise: Advise;
  /** The driver decides how often these lines would come: a burst, then a trickle (issue 19). */
  private readonly logLimit = new LogRateLimiter();

  constructor(
    private readonly opts: VirtioBalloonOptions,
    private readonly loop?: EventLoop,
    private readonly logger?: Logger,
  ) {
    const size = opts.queueSize ?? 256;
    if (!Number.isInteger(size) || size < 4 || size > 32768 || (size & (size - 1)) !== 0)
      throw new VirtioBalloonError('Config', `${opts.id}: queueSize ${size} must be a power of two in 4..32768`, {
        size,
      });
    let f = VIRTIO_F_VERSION_1 | VIRTIO_F_RING_EVENT_IDX | VIRTIO_F_RING_INDIRECT_DESC;
    let queues = 2;
    if (opts.stats ?? true) {
      f |= VIRTIO_BALLOON_F_STATS_VQ;
      queues++;
    }
    if (opts.freePageReporting ?? true) {
      f |= VIRTIO_BALLOON_F_REPORTING;
      queues++;
    }
    if (opts.deflateOnOom) f |= VIRTIO_BALLOON_F_DEFLATE_ON_OOM;
    this.deviceFeatures = f;
    this.queueMaxSizes = Array.from({ length: queues }, () => size);
    this.numPages = this.pagesFor(opts.target ?? 0n);
    this.advise = opts.advise ?? nativeAdvise;
  }

  get id(): string {
    return this.opts.id;
  }

  /** Pages of a target in bytes; refuses more than guest RAM or a negative size. */
  private pagesFor(bytes: bigint): number {
    if (bytes < 0n || bytes > this.opts.memorySize)
      throw new VirtioBalloonError(
        'Target',
        `${this.id}: a balloon target of ${bytes} bytes is outside 0..${this.opts.memorySize} (the guest's RAM)`,
        { bytes },
      );
    return Number(bytes / BigInt(BALLOON_PAGE));
  }

  setTarget(bytes: bigint): void {
    this.numPages = this.pagesFor(bytes);
    this.configInterrupt?.signalConfigChange();
    this.logger?.info({ target: bytes.toString(), pages: this.numPages }, 'balloon target set');
  }

  status(): BalloonStatus {
    return {
      targetBytes: BigInt(this.numPages) * BigInt(BALLOON_PAGE),
      actualBytes: BigInt(this.actual) * BigInt(BALLOON_PAGE),
      ...(this.lastStats ? { stats: { ...this.lastStats }, statsAt: this.statsAt } : {}),
    };
  }

  /** Flat monotonic counters (C4) plus the current sizes in pages. */
  counters(): Record<string, number> {
    return { ...this.metrics, targetPages: this.numPages, actualPages: this.actual };
  }

  requestStats(): Promise<Readonly<Record<string, number>>> {
    if (!this.queues?.hasStats)
      return Promise.reject(
        new VirtioBalloonError(
          'Config',
          `${this.id}: the guest has no statistics queue (not offered or not negotiated)`,
          {},
        ),
      );
    return new Promise((resolve, reject) => {
      this.statsWaiters.push({ resolve, reject });
      this.queues!.releaseStats();
    });
  }

  readConfig(offset: number, data: Uint8Array): void {
    const cfg = new Uint8Array(BALLOON_CONFIG_SIZE);
    const dv = new DataView(cfg.buffer);
    dv.setUint32(Cfg.numPages, this.numPages, true);
    dv.setUint32(Cfg.actual, this.actual, true);
    data.fill(0);
    if (offset < 0 || offset >= cfg.length) return;
    data.set(cfg.subarray(offset, Math.min(offset + data.length, cfg.length)));
  }

  /** Only `actual` is the driver's to write (a whole or partial le32 write); everything else is ignored. */
  writeConfig(offset: number, data: Uint8Array): void {
    if (offset < Cfg.actual || offset + data.length > Cfg.actual + 4) return;
    const word = new Uint8Array(4);
    new DataView(word.buffer).setUint32(0, this.actual, true);
    word.set(data, offset - Cfg.actual);
    this.actual = new DataView(word.buffer).getUint32(0, true);
  }

  activate(a: VirtioActivation): void {
    this.stopQueues();
    const hooks: BalloonQueueHooks = {
      inflate: (pages) => this.release(a, pages, 'inflate'),
      deflate: (count) => {
        this.metrics.deflatedPages += count;
      },
      report: (pages) => this.release(a, pages, 'report'),
      stats: (s) => this.onStats(s),
      invalid: (what) => {
        this.metrics.invalidRequests++;
        this.logLimit.log('invalid', (suppressed) =>
          this.logger?.warn(
            { device: this.id, what, suppressed },
            `balloon: bad request from the driver ignored${suppressedNote(suppressed)}`,
          ),
        );
      },
    };
    this.queues = new BalloonQueues(a, hooks, this.loop, this.opts.defer, this.restoredStatsHead);
    this.restoredStatsHead = undefined;
    const every = this.opts.statsIntervalS ?? 0;
    if (every > 0 && this.queues.hasStats && this.loop)
      this.statsTimer = this.loop.setTimer(every * 1000, () => this.queues?.releaseStats(), { repeat: true });
    this.queues.processAll();
  }

  private release(a: VirtioActivation, pages: readonly GuestPages[], why: 'inflate' | 'report'): void {
    const r = releasePages(a.memory, pages, this.advise);
    const page = BigInt(BALLOON_PAGE);
    if (why === 'inflate') this.metrics.inflatedPages += Number(r.released / page);
    else this.metrics.reportedPages += Number(r.released / page);
    this.metrics.releasedBytes += Number(r.released);
    for (const x of r.refused) {
      this.metrics.refusedPages += Number((x.length + page - 1n) / page);
      this.logLimit.log('refused', (suppressed) =>
        this.logger?.warn(
          { device: this.id, start: x.start.toString(16), why: x.why, suppressed },
          `balloon: pages not released${suppressedNote(suppressed)}`,
        ),
      );
    }
  }

  private onStats(s: Record<string, number>): void {
    this.lastStats = s;
    this.statsAt = Date.now();
    this.metrics.statsUpdates++;
    const waiters = this.statsWaiters;
    this.statsWaiters = [];
    for (const w of waiters) w.resolve({ ...s });
  }

  /** Serves every queue now (what their notifications do). */
  process(): void {
    this.queues?.processAll();
  }

  reset(): void {
    this.stopQueues();
    this.actual = 0;
  }

  private stopQueues(): void {
    this.statsTimer?.dispose();
    this.statsTimer = undefined;
    this.queues?.stop();
    this.queues = undefined;
    const waiters = this.statsWaiters;
    this.statsWaiters = [];
    for (const w of waiters) w.reject(new VirtioBalloonError('Config', `${this.id}: the driver reset the balloon`, {}));
  }

  saveState(): BalloonState {
    return {
      ...this.shape(),
      numPages: this.numPages,
      actual: this.actual,
      statsHead: this.queues?.heldStatsHead ?? this.restoredStatsHead ?? null,
      stats: this.lastStats ? { ...this.lastStats } : null,
      metrics: { ...this.metrics },
    };
  }

  checkState(s: BalloonState): void {
    checkBalloonState(s, { ...this.shape(), memoryPages: Number(this.opts.memorySize / BigInt(BALLOON_PAGE)) });
  }

  loadState(s: BalloonState): void {
    this.numPages = s.numPages;
    this.actual = s.actual;
    this.lastStats = s.stats ?? undefined;
    this.restoredStatsHead = s.statsHead ?? undefined;
    Object.assign(this.metrics, s.metrics);
  }

  private shape(): Pick<BalloonState, 'queueSize' | 'features'> {
    return { queueSize: this.queueMaxSizes[0]!, features: this.deviceFeatures.toString(16) };
  }

  /** Stops serving for good (the plugin's teardown). */
  destroy(): void {
    this.stopQueues();
  }
}
