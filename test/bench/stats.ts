import type { Summary } from './types.js';

/** min / median / max of a non-empty list (median of an even count: mean of the middle two). */
export function summarize(values: readonly number[]): Summary | undefined {
  const v = values.filter((x) => Number.isFinite(x));
  if (v.length === 0) return undefined;
  const s = [...v].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
  return { min: s[0], median, max: s[s.length - 1], values: [...v] };
}

/** Ratios ours[i] / peer[i] for the repeats where both sides have a positive figure. */
export function pairedRatios(ours: readonly number[], peer: readonly number[]): number[] {
  const out: number[] = [];
  for (let i = 0; i < Math.min(ours.length, peer.length); i++) {
    if (Number.isFinite(ours[i]) && Number.isFinite(peer[i]) && peer[i] > 0) out.push(ours[i] / peer[i]);
  }
  return out;
}

/** A figure for a table cell: 3 significant digits, no exponent for everyday magnitudes. */
export function fmt(x: number | undefined): string {
  if (x === undefined || !Number.isFinite(x)) return '-';
  const a = Math.abs(x);
  if (a >= 1000) return Math.round(x).toString();
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  if (a >= 1) return x.toFixed(2);
  return x.toFixed(3);
}
