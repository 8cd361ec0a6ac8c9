/** Counters of one queue pair. Plain numbers: cheap to bump, JSON-ready. */
export interface NetQueueMetrics {
  rxFrames: number;
  rxBytes: number;
  /** Frames read from the backend that never reached the guest (no fitting buffer, oversized, link down). */
  rxDropped: number;
  /** Backend read failures (EIO, EBADFD, ...). */
  rxErrors: number;
  /** RX chains the driver offered that could hold nothing (shorter than the header, or not writable). */
  rxBadChains: number;
  /** Times RX stopped because the guest had no buffers (backpressure). */
  rxNoBuffers: number;
  rxThrottled: number;
  txFrames: number;
  txBytes: number;
  /** Frames the guest sent that were dropped: malformed, oversized, GSO the backend cannot carry, backend refused. */
  txDropped: number;
  /** Malformed TX chains (no room for a header, too big). */
  txMalformed: number;
  /** Backend write failures. */
  txErrors: number;
  txThrottled: number;
  /** Used-buffer interrupts raised (RX and TX queues); txInterrupts is the TX share. */
  interrupts: number;
  txInterrupts: number;
  /** TX queue notifications (guest kicks) served. */
  txKicks: number;
  /** RX queue notifications (the driver added buffers after RX ran dry). */
  rxKicks: number;
  /** Backend-readable wakeups of the RX path. */
  rxWakeups: number;
  /** Frames carrying a GSO type (TSO/UFO segments of up to 64 KiB), per direction. */
  txGso: number;
  rxGso: number;
  /** Calls of the queue handlers and the main-thread time they took (µs, whole). */
  handlerCalls: number;
  handlerUs: number;
}

const zero = (): NetQueueMetrics => ({
  rxFrames: 0,
  rxBytes: 0,
  rxDropped: 0,
  rxErrors: 0,
  rxBadChains: 0,
  rxNoBuffers: 0,
  rxThrottled: 0,
  txFrames: 0,
  txBytes: 0,
  txDropped: 0,
  txMalformed: 0,
  txErrors: 0,
  txThrottled: 0,
  interrupts: 0,
  txInterrupts: 0,
  txKicks: 0,
  rxKicks: 0,
  rxWakeups: 0,
  txGso: 0,
  rxGso: 0,
  handlerCalls: 0,
  handlerUs: 0,
});

/** Runs one queue handler wakeup and counts it: handlerCalls + 1, its main-thread time added to handlerUs. */
export function timeHandler(m: NetQueueMetrics, wakeup: () => void): void {
  const t0 = performance.now();
  try {
    wakeup();
  } finally {
    m.handlerCalls++;
    m.handlerUs += Math.round((performance.now() - t0) * 1000);
  }
}

/** Counters of the control queue. */
export interface NetCtrlMetrics {
  commands: number;
  /** Commands answered VIRTIO_NET_ERR (unknown class/command, bad data). */
  errors: number;
}

/** Per-queue-pair metrics of one virtio-net device, control-queue counters, and their sum. */
export class NetMetrics {
  readonly pairs: NetQueueMetrics[];
  readonly ctrl: NetCtrlMetrics = { commands: 0, errors: 0 };
  constructor(queuePairs: number) {
    this.pairs = Array.from({ length: queuePairs }, zero);
  }

  pair(i: number): NetQueueMetrics {
    return this.pairs[i];
  }

  total(): NetQueueMetrics {
    const t = zero();
    for (const q of this.pairs) for (const k of Object.keys(t) as (keyof NetQueueMetrics)[]) t[k] += q[k];
    return t;
  }

  snapshot(): { total: NetQueueMetrics; pairs: NetQueueMetrics[]; ctrl: NetCtrlMetrics } {
    return { total: this.total(), pairs: this.pairs.map((q) => ({ ...q })), ctrl: { ...this.ctrl } };
  }
}
