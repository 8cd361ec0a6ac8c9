import { TokenBucket } from './token-bucket.js';

/** How many messages of one key may go out at once, and how fast that allowance comes back. */
export interface LogLimitConfig {
  /** Messages let through in a burst (and per `refillMs` afterwards). */
  readonly burst: number;
  readonly refillMs: number;
}

/** Ten messages at once, then ten per minute, per key. */
export const DEFAULT_LOG_LIMIT: LogLimitConfig = { burst: 10, refillMs: 60_000 };

const MAX_KEYS = 1024;

/**
 * Rate limit for log lines a guest can cause (a device failing each access, a disk error per
 * request): per key, a token bucket lets a burst through, then a trickle; the rest are
 * counted, and the next line let through says how many were dropped since. A guest then
 * cannot fill the host's log or spend its CPU on logging, and nothing goes unseen.
 */
export class LogRateLimiter {
  private readonly keys = new Map<string, { bucket: TokenBucket; suppressed: number }>();

  constructor(
    private readonly config: LogLimitConfig = DEFAULT_LOG_LIMIT,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /**
   * Calls `emit(suppressed)` when `key` may log now (`suppressed`: lines dropped for it since
   * the last one let through) and returns true; otherwise counts the line and returns false.
   */
  log(key: string, emit: (suppressed: number) => void): boolean {
    let k = this.keys.get(key);
    if (!k) {
      if (this.keys.size >= MAX_KEYS) this.keys.clear();
      k = {
        bucket: new TokenBucket({ size: this.config.burst, refillTimeMs: this.config.refillMs }, this.now),
        suppressed: 0,
      };
      this.keys.set(key, k);
    }
    if (!k.bucket.canTake(1)) {
      k.suppressed++;
      return false;
    }
    k.bucket.take(1);
    const suppressed = k.suppressed;
    k.suppressed = 0;
    emit(suppressed);
    return true;
  }
}

/** " (N similar messages suppressed)" when N > 0, else "" (to end a rate-limited log message). */
export function suppressedNote(n: number): string {
  return n > 0 ? ` (${n} similar message${n === 1 ? '' : 's'} suppressed)` : '';
}
