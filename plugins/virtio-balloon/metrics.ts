/** Counters of one balloon (monotonic; plain numbers, JSON-ready). */
export interface BalloonMetrics {
  /** Pages the guest put into the balloon whose memory went back to the host. */
  inflatedPages: number;
  /** Pages the guest took back out of the balloon. */
  deflatedPages: number;
  /** Free pages the guest reported whose memory went back to the host. */
  reportedPages: number;
  /** Bytes given back to the host (inflated + reported). */
  releasedBytes: number;
  /** Pages refused: outside guest RAM, read-only, or madvise failed. */
  refusedPages: number;
  /** Requests ignored as malformed (wrong direction, partial PFNs). */
  invalidRequests: number;
  /** Statistics buffers received. */
  statsUpdates: number;
}

/** A fresh set of counters. */
export const zeroBalloonMetrics = (): BalloonMetrics => ({
  inflatedPages: 0,
  deflatedPages: 0,
  reportedPages: 0,
  releasedBytes: 0,
  refusedPages: 0,
  invalidRequests: 0,
  statsUpdates: 0,
});
