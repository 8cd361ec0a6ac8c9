/** What one pre-copy round went through: the dirty pages it looked at, and the ms it took. */
export interface RoundCost {
  round: number;
  /** Pages looked at: the dirty set of the round before (round 1: every page, zero pages skipped). */
  pages: number;
  ms: number;
}

/**
 * The ms a stop-and-copy of `dirtyPages` would take, priced at the last round's ms per page looked at. Every dirty
 * page costs something whether it goes out as data (copied, sent) or as a zero run (only compared), so the price per
 * page of the round before, whose pages were the dirty set of the one before it, holds for the next dirty set: a
 * guest that keeps rewriting zero pages is priced at what zero pages cost, not at a "bytes sent" rate that counts
 * none of them (which never fitted any budget). Round 1 looked at all of memory, mostly zero pages skipped, a mix
 * unlike any dirty set: it prices nothing (Infinity), so a second round always follows it. A round that looked at no
 * page prices only an empty dirty set (0); anything else takes one more round.
 */
export function copyEstimateMs(last: RoundCost, dirtyPages: number): number {
  if (last.round < 2) return Infinity;
  if (last.pages <= 0) return dirtyPages === 0 ? 0 : Infinity;
  return (dirtyPages * last.ms) / last.pages;
}
