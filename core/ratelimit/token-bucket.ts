/**
 * One token bucket (Firecracker / Cloud Hypervisor design): `size` tokens refill
 * linearly over `refillTimeMs`; `oneTimeBurst` extra tokens are available once at
 * start and never refill. A request larger than the bucket is let through when the
 * bucket is full and leaves a debt (negative budget) that later requests wait out,
 * so an oversized request is slowed down, never refused forever.
 */
export interface TokenBucketConfig {
  /** Tokens the bucket holds when full (bytes or operations). */
  readonly size: number;
  /** Extra tokens usable once, consumed before the refilling budget. */
  readonly oneTimeBurst?: number;
  /** Milliseconds to refill an empty bucket to `size`. */
  readonly refillTimeMs: number;
}

/**
 * The bucket of a TokenBucketConfig: a budget refilled linearly from `now` (a millisecond clock), queried with
 * canTake/waitMs and charged with take/refund. It keeps no timers: RateLimiter waits on it.
 */
export class TokenBucket {
  private budget: number;
  private burst: number;
  private last: number;
  private readonly ratePerMs: number;

  constructor(
    readonly config: TokenBucketConfig,
    private readonly now: () => number,
  ) {
    if (!(config.size > 0) || !(config.refillTimeMs > 0)) {
      throw new RangeError(
        `token bucket needs size > 0 and refillTimeMs > 0 (got ${config.size}, ${config.refillTimeMs})`,
      );
    }
    this.budget = config.size;
    this.burst = config.oneTimeBurst ?? 0;
    this.ratePerMs = config.size / config.refillTimeMs;
    this.last = now();
  }

  private refill(): void {
    const t = this.now();
    const elapsed = t - this.last;
    this.last = t;
    if (elapsed > 0) this.budget = Math.min(this.config.size, this.budget + elapsed * this.ratePerMs);
  }

  /** Tokens usable now (one-time burst included). */
  available(): number {
    this.refill();
    return Math.max(0, this.budget) + this.burst;
  }

  /** How many tokens must be on hand before `tokens` may go (oversized requests need a full bucket). */
  private needed(tokens: number): number {
    return Math.min(tokens, this.config.size);
  }

  /** Whether `tokens` could be taken now, without taking them. */
  canTake(tokens: number): boolean {
    this.refill();
    return this.burst + this.budget >= this.needed(tokens) - this.epsilon();
  }

  /** Takes `tokens` (call only after canTake): the burst first, then the budget, which may go negative. */
  take(tokens: number): void {
    const fromBurst = Math.min(this.burst, tokens);
    this.burst -= fromBurst;
    this.budget -= tokens - fromBurst;
  }

  /** Gives tokens back (a request that was counted but not done). */
  refund(tokens: number): void {
    this.refill();
    this.budget = Math.min(this.config.size, this.budget + tokens);
  }

  /** Milliseconds until `tokens` could be taken (0 when they can now). */
  waitMs(tokens: number): number {
    this.refill();
    const missing = this.needed(tokens) - this.burst - this.budget;
    return missing <= this.epsilon() ? 0 : Math.ceil(missing / this.ratePerMs);
  }

  /** Floating-point slack so a bucket refilled "exactly" in time is not a hair short. */
  private epsilon(): number {
    return 1e-9 * this.config.size;
  }
}
