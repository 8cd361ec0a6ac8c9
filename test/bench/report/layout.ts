import type { BenchResults, MachineInfo, Row } from '../types.js';

/**
 * The results chart's geometry, apart from drawing it (svg.ts draws it, png.ts rasterises that with real fonts).
 * Each row with a ratio becomes one bar of how many times better (right, green) or worse (left, red) ours is than
 * its peer, whatever the row's direction: lower-is-better rows are turned round (peer/ours), so "better" is always
 * on the right. The axis is logarithmic and centred on 1 (same as the peer), so 22× worse and 1.3× better both stay
 * readable; whiskers span the repeats' min–max, a blue tick marks the target.
 */

/** A piece of text placed on the chart; `x` is its anchor point, `y` its baseline. */
export interface TextBox {
  x: number;
  y: number;
  text: string;
  anchor: 'start' | 'middle' | 'end';
  size: number;
  bold?: boolean;
  fill?: string;
}

/** One row's bar, from the centre line to its median, with the row label and the value text. */
export interface BarRow {
  label: TextBox;
  value: TextBox;
  /** Bar top and height. */
  y: number;
  height: number;
  /** Bar ends (x0 <= x1): one of them is the centre line. */
  x0: number;
  x1: number;
  /** Ours better than (or as good as) the peer. */
  good: boolean;
  /** Whisker ends (min–max of the repeats), clamped to the plot. */
  whisker: [number, number];
  /** The target's x, when the row has one. */
  target?: number;
}

/** Everything svg.ts draws. */
export interface ChartLayout {
  width: number;
  height: number;
  /** Title and caption lines. */
  header: TextBox[];
  rows: BarRow[];
  /** The plot area (the bars' region) and the centre line (ratio 1). */
  plot: { left: number; right: number; top: number; bottom: number };
  centre: number;
  ticks: { x: number; label: TextBox }[];
  /** Side captions under the axis ("ours worse" / "ours better"). */
  captions: TextBox[];
  /** Half the axis spans 1..range (a power of two). */
  range: number;
}

const FONT = 13;
const TITLE = 15;
const ROW_H = 24;
const BAR_H = 14;
const PLOT_W = 560;
const GAP = 8;

/**
 * A width no smaller than DejaVu Sans's for `text` at `size` px (m, w, W and arrows ~1 em, capitals and × up to
 * 0.84 em, digits and most lower case 0.64 em; bold ~8% wider); the layout keeps texts apart by these widths.
 */
export function textWidth(text: string, size: number, bold = false): number {
  let em = 0;
  for (const ch of text)
    em += /[mwMW%—←→]/.test(ch) ? 1 : /[A-Z×]/.test(ch) ? 0.86 : /[ .,:;|!il'()[\]]/.test(ch) ? 0.4 : 0.66;
  return em * size * (bold ? 1.1 : 1);
}

/** The horizontal extent and the vertical band of a text (ascent ~0.8 em, descent ~0.25 em). */
export function boxOf(t: TextBox): { x0: number; x1: number; y0: number; y1: number } {
  const w = textWidth(t.text, t.size, t.bold);
  const x0 = t.anchor === 'start' ? t.x : t.anchor === 'end' ? t.x - w : t.x - w / 2;
  return { x0, x1: x0 + w, y0: t.y - 0.8 * t.size, y1: t.y + 0.25 * t.size };
}

/** How many times better ours is (>1 better, <1 worse) for a ratio ours/peer and the row's direction. */
export const advantage = (ratio: number, better: Row['better']): number => (better === 'higher' ? ratio : 1 / ratio);

/** "3.20× better", "13.7× worse", "same": a ratio as the chart words it. */
export function wording(adv: number): string {
  const f = adv >= 1 ? adv : 1 / adv;
  const n = f >= 10 ? f.toFixed(1) : f.toFixed(2);
  if (n === '1.00') return 'same';
  return `${n}× ${adv >= 1 ? 'better' : 'worse'}`;
}

/** The machine line of the title: CPU, count, memory, KVM kind (and the sandbox's L1 when rows ran there). */
export function machineLine(m: MachineInfo, sandbox?: MachineInfo): string {
  const host = `${m.cpuModel}, ${m.cpus} CPUs, ${Math.round(m.memoryMiB / 1024)} GiB, host KVM ${m.hostKvm}`;
  return sandbox ? `${host}; sandbox rows in an L1 of ${sandbox.cpus} vCPUs (QEMU TCG)` : host;
}

/** "2026-12-07 10:53 UTC" from an ISO time ("2026-12-07" from a date alone). */
const dateLine = (iso: string): string => (iso.length > 10 ? `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC` : iso);

/** Lays out the chart of `res` (see the file comment). */
export function layoutChart(res: BenchResults): ChartLayout {
  const rows = res.rows.filter((r): r is Row & { ratio: NonNullable<Row['ratio']> } => r.ratio !== undefined);
  const adv = rows.map((r) => ({
    median: advantage(r.ratio.median, r.better),
    lo: Math.min(advantage(r.ratio.min, r.better), advantage(r.ratio.max, r.better)),
    hi: Math.max(advantage(r.ratio.min, r.better), advantage(r.ratio.max, r.better)),
    target: r.target ? advantage(r.target.value, r.better) : undefined,
  }));
  const extremes = adv.flatMap((a) => [a.median, a.lo, a.hi, a.target ?? 1]).filter((v) => v > 0 && isFinite(v));
  const worst = Math.max(2, ...extremes.map((v) => Math.max(v, 1 / v)));
  const range = 2 ** Math.min(10, Math.ceil(Math.log2(worst) - 1e-9));

  const labels = rows.map((r) => `${r.id} (${r.where})`);
  const values = adv.map((a) => wording(a.median));
  const labelW = Math.max(120, ...labels.map((l) => textWidth(l, FONT)));
  const valueW = Math.max(60, ...values.map((v) => textWidth(v, FONT)));
  const title = 'tsvmm against its peers (QEMU, C): how many times better or worse ours is, log scale';
  const sub1 = machineLine(res.machine, res.sandboxMachine);
  const sub2 = `${dateLine(res.startedAt)} · ${res.repeats} repeat${res.repeats === 1 ? '' : 's'} · bar: median, whisker: min–max, blue tick: target`;
  const left = GAP * 2 + labelW + GAP;
  const right = left + PLOT_W;
  const width = Math.ceil(
    Math.max(
      right + GAP + valueW + GAP * 2,
      GAP * 4 + Math.max(textWidth(title, TITLE, true), textWidth(sub1, FONT), textWidth(sub2, FONT)),
    ),
  );
  const header: TextBox[] = [
    { x: GAP * 2, y: 22, text: title, anchor: 'start', size: TITLE, bold: true },
    { x: GAP * 2, y: 42, text: sub1, anchor: 'start', size: FONT, fill: '#444' },
    { x: GAP * 2, y: 60, text: sub2, anchor: 'start', size: FONT, fill: '#444' },
  ];
  const top = 76;
  const centre = (left + right) / 2;
  const half = PLOT_W / 2;
  const x = (v: number): number => {
    const l = Math.max(-1, Math.min(1, Math.log2(v) / Math.log2(range)));
    return centre + l * half;
  };
  const out: BarRow[] = rows.map((r, i) => {
    const a = adv[i];
    const y = top + i * ROW_H;
    const end = x(a.median);
    return {
      label: { x: left - GAP, y: y + ROW_H / 2 + FONT * 0.35, text: labels[i], anchor: 'end', size: FONT },
      value: { x: right + GAP, y: y + ROW_H / 2 + FONT * 0.35, text: values[i], anchor: 'start', size: FONT },
      y: y + (ROW_H - BAR_H) / 2,
      height: BAR_H,
      x0: Math.min(centre, end),
      x1: Math.max(centre, end),
      good: a.median >= 1 || values[i] === 'same',
      whisker: [x(a.lo), x(a.hi)],
      target: a.target === undefined ? undefined : x(a.target),
    };
  });
  const bottom = top + Math.max(1, rows.length) * ROW_H;
  const ticks = axisTicks(range, x, bottom);
  const captions: TextBox[] = [
    { x: left, y: bottom + 40, text: '← ours worse', anchor: 'start', size: FONT, fill: '#c8553d' },
    { x: centre, y: bottom + 40, text: 'same as the peer', anchor: 'middle', size: FONT, fill: '#444' },
    { x: right, y: bottom + 40, text: 'ours better →', anchor: 'end', size: FONT, fill: '#4c9a2a' },
  ];
  return {
    width,
    height: bottom + 56,
    header,
    rows: out,
    plot: { left, right, top, bottom },
    centre,
    ticks,
    captions,
    range,
  };
}

/**
 * Ticks at powers of two out to `range` on both sides ("1", "2×", "4×", ...), thinned to every other power until
 * neighbouring labels keep a gap between them.
 */
function axisTicks(range: number, x: (v: number) => number, bottom: number): ChartLayout['ticks'] {
  const n = Math.round(Math.log2(range));
  for (let step = 1; ; step *= 2) {
    const ticks: ChartLayout['ticks'] = [];
    for (let k = -n; k <= n; k++) {
      if (k % step !== 0) continue;
      const f = 2 ** Math.abs(k);
      const text = k === 0 ? '1' : `${f}×`;
      ticks.push({ x: x(2 ** k), label: { x: x(2 ** k), y: bottom + 18, text, anchor: 'middle', size: FONT } });
    }
    const apart = ticks.every((t, i) => i === 0 || boxOf(ticks[i - 1].label).x1 + GAP <= boxOf(t.label).x0);
    if (apart || step >= n) return ticks;
  }
}
