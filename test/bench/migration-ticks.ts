/** How long the guest of a migration stood still, as the guest lives it: from its console ticks on both sides. */
export interface TickGap {
  /** ms from the source's last tick line to the destination's first. */
  gapMs: number;
  /** The usual ms between two ticks (median over the source's ticks): what a gap is without a pause. */
  normalMs: number;
  /** gapMs less normalMs (at least 0): the guest-visible downtime. */
  downtimeMs: number;
  /** The longest gap between two of the source's own ticks less normalMs: pauses before the switch-over. */
  sourceStallMs: number;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/**
 * The guest-visible downtime of a migration from the arrival times (ms, one clock) of the guest's tick lines on the
 * source's and the destination's console (`guestbench tick MS` in the guest). A guest that stops for D ms prints
 * its next tick D ms late, so the switch-over gap less the usual tick spacing is D, within the spacing: the same
 * measure for any VMM, whatever it calls its own downtime. Undefined without two source ticks and one destination
 * tick, or when the destination printed before the source's last tick (no switch-over to measure).
 */
export function tickGap(source: readonly number[], dest: readonly number[]): TickGap | undefined {
  if (source.length < 2 || dest.length < 1) return undefined;
  const last = source[source.length - 1]!;
  const first = dest[0]!;
  if (first < last) return undefined;
  const gaps = source.slice(1).map((t, i) => t - source[i]!);
  const normalMs = median(gaps);
  const gapMs = first - last;
  return {
    gapMs,
    normalMs,
    downtimeMs: Math.max(0, gapMs - normalMs),
    sourceStallMs: Math.max(0, Math.max(...gaps) - normalMs),
  };
}
