import type { BenchResults, Row } from '../types.js';

/** Bars of the median ratio per row with min–max whiskers, a line at 1.0 and at each target. */
export interface ChartBar {
  label: string;
  median: number;
  min: number;
  max: number;
  target?: number;
  better: 'lower' | 'higher';
}

/** One bar per result row that has a ratio (rows without a peer figure are left out). */
export function chartBars(res: BenchResults): ChartBar[] {
  return res.rows
    .filter((r): r is Row & { ratio: NonNullable<Row['ratio']> } => r.ratio !== undefined)
    .map((r) => ({
      label: `${r.id} (${r.where})`,
      median: r.ratio.median,
      min: r.ratio.min,
      max: r.ratio.max,
      target: r.target?.value,
      better: r.better,
    }));
}

/** Axis tick spacing for a scale. */
export function tickStep(scale: number): number {
  return scale > 6 ? 1 : scale > 2.5 ? 0.5 : 0.25;
}

/**
 * The scale the chart uses (shared with the PNG renderer): the largest ratio or target, at least 1.2, rounded up
 * to a quarter.
 */
export function chartScale(bars: ChartBar[]): number {
  const top = Math.max(1.2, ...bars.map((b) => b.max), ...bars.map((b) => b.target ?? 0));
  return Math.ceil(top * 4) / 4;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** The results chart as an SVG document (text): one bar per ratio row, the 1.0 line and the targets. */
export function renderSvg(res: BenchResults): string {
  const bars = chartBars(res);
  const rowH = 26,
    left = 300,
    plotW = 520,
    top = 50,
    h = top + Math.max(1, bars.length) * rowH + 50;
  const scale = chartScale(bars);
  const x = (v: number) => left + (v / scale) * plotW;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${left + plotW + 40}" height="${h}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="20" font-size="14" font-weight="bold">tsvmm vs peers: ratio ours/peer (median, whiskers min–max)</text>`,
    `<text x="10" y="38" fill="#555">${esc(res.startedAt)} · ${res.repeats} repeats · ↓ rows: lower is better; ↑ rows: higher is better</text>`,
  ];
  bars.forEach((b, i) => {
    const y = top + i * rowH;
    const good = b.better === 'lower' ? b.median <= 1 : b.median >= 1;
    out.push(
      `<text x="${left - 8}" y="${y + 16}" text-anchor="end">${esc(b.label)} ${b.better === 'lower' ? '↓' : '↑'}</text>`,
    );
    out.push(
      `<rect x="${left}" y="${y + 5}" width="${Math.max(1, x(b.median) - left).toFixed(1)}" height="15" fill="${good ? '#4c9a2a' : '#c8553d'}"/>`,
    );
    out.push(
      `<line x1="${x(b.min).toFixed(1)}" x2="${x(b.max).toFixed(1)}" y1="${y + 12}" y2="${y + 12}" stroke="black"/>`,
    );
    out.push(`<text x="${(x(b.max) + 6).toFixed(1)}" y="${y + 16}">${b.median.toFixed(2)}</text>`);
    if (b.target !== undefined)
      out.push(
        `<line x1="${x(b.target).toFixed(1)}" x2="${x(b.target).toFixed(1)}" y1="${y + 2}" y2="${y + 23}" stroke="#1f5fbf" stroke-dasharray="3,2"/>`,
      );
  });
  const base = top + bars.length * rowH;
  out.push(`<line x1="${x(1)}" x2="${x(1)}" y1="${top}" y2="${base}" stroke="#333" stroke-dasharray="4,3"/>`);
  for (let v = 0; v <= scale + 1e-9; v += tickStep(scale)) {
    out.push(
      `<line x1="${x(v)}" x2="${x(v)}" y1="${base}" y2="${base + 4}" stroke="black"/><text x="${x(v)}" y="${base + 16}" text-anchor="middle">${v.toFixed(2)}</text>`,
    );
  }
  out.push(
    `<text x="${left}" y="${base + 34}" fill="#555">dashed black: 1.0 (same as peer) · dashed blue: target</text>`,
  );
  if (bars.length === 0) out.push(`<text x="${left}" y="${top + 16}">no ratios in this run</text>`);
  out.push('</svg>');
  return out.join('\n');
}
