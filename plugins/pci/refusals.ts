import type { Logger } from '../../core/logger.js';
import { LogRateLimiter, suppressedNote } from '../../core/ratelimit/log-limiter.js';

/**
 * Where the pci plugin and its helpers say what they refused a guest (a BAR over RAM, an MSI route the
 * hypervisor rejected): one warning line per event, rate limited per key so a guest cannot flood the log.
 */
export class RefusalLog {
  private readonly limiter: LogRateLimiter;
  /** Events refused so far, by key (for tests and counters). */
  readonly counts = new Map<string, number>();

  constructor(
    private readonly logger?: Logger,
    limiter?: LogRateLimiter,
  ) {
    this.limiter = limiter ?? new LogRateLimiter();
  }

  /** Logs `message` (with `fields`) unless `key` logged too often lately; always counts it. */
  refuse(key: string, message: string, fields: Record<string, unknown> = {}): void {
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    this.limiter.log(key, (n) => this.logger?.warn(fields, `${message}${suppressedNote(n)}`));
  }

  /** Every refusal counted, all keys together. */
  get total(): number {
    let n = 0;
    for (const c of this.counts.values()) n += c;
    return n;
  }
}
