/** Counters of one queue. Plain numbers: cheap to bump, JSON-ready. */
export interface BlkQueueMetrics {
  requests: number;
  readBytes: number;
  writeBytes: number;
  reads: number;
  writes: number;
  flushes: number;
  discards: number;
  writeZeroes: number;
  getIds: number;
  /** Requests answered IOERR (validation or disk failure). */
  ioErrors: number;
  /** Requests answered UNSUPP. */
  unsupported: number;
  /** Times the rate limiter held the queue. */
  throttled: number;
  /** Interrupts raised towards the driver. */
  interrupts: number;
}

const zero = (): BlkQueueMetrics => ({
  requests: 0,
  readBytes: 0,
  writeBytes: 0,
  reads: 0,
  writes: 0,
  flushes: 0,
  discards: 0,
  writeZeroes: 0,
  getIds: 0,
  ioErrors: 0,
  unsupported: 0,
  throttled: 0,
  interrupts: 0,
});

/** Per-queue metrics of one virtio-blk device, plus their sum. */
export class BlkMetrics {
  readonly queues: BlkQueueMetrics[];
  constructor(numQueues: number) {
    this.queues = Array.from({ length: numQueues }, zero);
  }

  queue(i: number): BlkQueueMetrics {
    return this.queues[i];
  }

  total(): BlkQueueMetrics {
    const t = zero();
    for (const q of this.queues) for (const k of Object.keys(t) as (keyof BlkQueueMetrics)[]) t[k] += q[k];
    return t;
  }

  snapshot(): { total: BlkQueueMetrics; queues: BlkQueueMetrics[] } {
    return { total: this.total(), queues: this.queues.map((q) => ({ ...q })) };
  }
}
