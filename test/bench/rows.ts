import { pairedRatios, summarize } from './stats.js';
import type { Row } from './types.js';

/** Per-repeat figures of one side: index = repeat, a hole (undefined) where that repeat gave none. */
export type PerRepeat = readonly (number | undefined)[];

const dense = (a: PerRepeat): number[] => a.filter((x): x is number => x !== undefined && Number.isFinite(x));

/**
 * A row from both sides' per-repeat figures: ratios only over the repeats where both sides produced a figure
 * (paired). With no such repeat the row is n/a, with the first problem of the side that has no figure.
 */
export function pairedRow(
  base: Row,
  ours: PerRepeat,
  peer: PerRepeat,
  problems: { ours: string[]; peer: string[] },
): Row {
  const a: number[] = [];
  const b: number[] = [];
  for (let i = 0; i < Math.max(ours.length, peer.length); i++) {
    const x = ours[i];
    const y = peer[i];
    if (x !== undefined && y !== undefined && Number.isFinite(x) && Number.isFinite(y)) {
      a.push(x);
      b.push(y);
    }
  }
  if (a.length === 0) {
    const why =
      dense(ours).length === 0
        ? `ours: ${problems.ours[0] ?? 'no figure'}`
        : `peer: ${problems.peer[0] ?? 'no figure'}`;
    return { ...base, ours: summarize(dense(ours)), peerSummary: summarize(dense(peer)), na: `n/a: ${why}` };
  }
  return { ...base, ours: summarize(a), peerSummary: summarize(b), ratio: summarize(pairedRatios(a, b)) };
}
