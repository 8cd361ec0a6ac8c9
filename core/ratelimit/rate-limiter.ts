import { z } from 'zod';
import type { Disposable } from '../bus/bus.js';
import { TokenBucket, type TokenBucketConfig } from './token-bucket.js';

/** Config of one bucket; size 0 (or no bucket) means unlimited. */
export const TokenBucketSchema = z.strictObject({
  size: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  oneTimeBurst: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER).optional(),
  refillTimeMs: z.number().int().positive().max(3_600_000),
});

/** A device's I/O limits: bytes per refill period and operations per refill period. */
export const RateLimiterSchema = z.strictObject({
  bandwidth: TokenBucketSchema.optional(),
  ops: TokenBucketSchema.optional(),
});
/** A validated RateLimiterSchema: the optional bandwidth (bytes) and ops buckets. */
export type RateLimiterConfig = z.output<typeof RateLimiterSchema>;

/**
 * Where the limiter reads time and arms timers; defaults to the process clock (sinon fake timers replace both).
 */
export interface RateLimiterClock {
  now(): number;
  setTimer(ms: number, cb: () => void): Disposable;
}

const defaultClock: RateLimiterClock = {
  now: () => performance.now(),
  setTimer: (ms, cb) => {
    const t = setTimeout(cb, ms);
    return { dispose: () => clearTimeout(t) };
  },
};

/**
 * Two token buckets, bytes and operations, checked together: a request goes only
 * when both have room, and then both are charged. When it may not go, the caller
 * keeps the request, pauses its queue and asks `whenReady` to be called back; the
 * limiter arms one timer for the time the missing tokens take to refill. Nothing
 * is ever dropped. Shared by virtio-blk and virtio-net.
 */
export class RateLimiter implements Disposable {
  private readonly bytes?: TokenBucket;
  private readonly ops?: TokenBucket;
  private timer?: Disposable;
  private waiters: (() => void)[] = [];
  /** The request the next timer is sized for. */
  private lastAsk = { bytes: 0, ops: 0 };
  /** Times a request had to wait (for metrics). */
  throttled = 0;

  constructor(
    config: RateLimiterConfig = {},
    private readonly clock: RateLimiterClock = defaultClock,
  ) {
    if (config.bandwidth && config.bandwidth.size > 0)
      this.bytes = new TokenBucket(config.bandwidth as TokenBucketConfig, clock.now);
    if (config.ops && config.ops.size > 0) this.ops = new TokenBucket(config.ops as TokenBucketConfig, clock.now);
  }

  /** True when no bucket is configured. */
  get unlimited(): boolean {
    return !this.bytes && !this.ops;
  }

  /** True while a timer is armed for waiters. */
  get blocked(): boolean {
    return this.timer !== undefined;
  }

  /** Charges one request of `bytes` bytes and `ops` operations when both buckets allow it; else charges nothing. */
  tryConsume(bytes: number, ops = 1): boolean {
    if (this.blocked) return false; // earlier waiters go first
    if (this.bytes && !this.bytes.canTake(bytes)) return this.refuse();
    if (this.ops && !this.ops.canTake(ops)) return this.refuse();
    this.bytes?.take(bytes);
    this.ops?.take(ops);
    return true;
  }

  private refuse(): false {
    this.throttled++;
    return false;
  }

  /**
   * Calls `cb` once after enough tokens for a request of `bytes`/`ops` should be
   * there (the caller then retries tryConsume). Callbacks queue in order.
   */
  whenReady(cb: () => void, bytes: number, ops = 1): Disposable {
    this.waiters.push(cb);
    this.lastAsk = { bytes, ops };
    if (!this.timer) this.arm();
    return {
      dispose: () => {
        this.waiters = this.waiters.filter((w) => w !== cb);
      },
    };
  }

  private arm(): void {
    const wait = Math.max(this.bytes?.waitMs(this.lastAsk.bytes) ?? 0, this.ops?.waitMs(this.lastAsk.ops) ?? 0, 1);
    this.timer = this.clock.setTimer(wait, () => {
      this.timer = undefined;
      const w = this.waiters;
      this.waiters = [];
      for (const cb of w) cb();
    });
  }

  /** Returns tokens taken for a request that was not carried out. */
  refund(bytes: number, ops = 1): void {
    this.bytes?.refund(bytes);
    this.ops?.refund(ops);
  }

  dispose(): void {
    this.timer?.dispose();
    this.timer = undefined;
    this.waiters = [];
  }
}
