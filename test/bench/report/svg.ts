import type { BenchResults } from '../types.js';
import { layoutChart, type TextBox } from './layout.js';

/** The font the chart names (png.ts renders it with DejaVu Sans; a browser falls back to its sans-serif). */
export const CHART_FONT = 'DejaVu Sans';

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const n = (v: number) => v.toFixed(1);

const text = (t: TextBox): string =>
  `<text x="${n(t.x)}" y="${n(t.y)}" text-anchor="${t.anchor}" font-size="${t.size}"` +
  `${t.bold ? ' font-weight="bold"' : ''}${t.fill ? ` fill="${t.fill}"` : ''}>${esc(t.text)}</text>`;

/** The results chart as an SVG document (text), drawn from layoutChart (layout.ts says what it shows). */
export function renderSvg(res: BenchResults): string {
  const l = layoutChart(res);
  const { left, right, top, bottom } = l.plot;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${l.width}" height="${l.height}" ` +
      `font-family="${CHART_FONT}, sans-serif" font-size="13">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    ...l.header.map(text),
  ];
  for (const t of l.ticks)
    out.push(`<line x1="${n(t.x)}" x2="${n(t.x)}" y1="${top}" y2="${bottom}" stroke="#e4e4e4"/>`);
  l.rows.forEach((r) => {
    out.push(text(r.label));
    out.push(
      `<rect x="${n(r.x0)}" y="${n(r.y)}" width="${n(Math.max(1, r.x1 - r.x0))}" height="${r.height}" ` +
        `fill="${r.good ? '#4c9a2a' : '#c8553d'}"/>`,
    );
    const wy = n(r.y + r.height / 2);
    out.push(`<line x1="${n(r.whisker[0])}" x2="${n(r.whisker[1])}" y1="${wy}" y2="${wy}" stroke="#222"/>`);
    if (r.target !== undefined)
      out.push(
        `<line x1="${n(r.target)}" x2="${n(r.target)}" y1="${n(r.y - 3)}" y2="${n(r.y + r.height + 3)}" ` +
          `stroke="#1f5fbf" stroke-width="2"/>`,
      );
    out.push(text(r.value));
  });
  if (l.rows.length === 0)
    out.push(text({ x: left, y: top + 16, text: 'no ratios in this run', anchor: 'start', size: 13 }));
  out.push(`<line x1="${left}" x2="${right}" y1="${bottom}" y2="${bottom}" stroke="#222"/>`);
  out.push(`<line x1="${n(l.centre)}" x2="${n(l.centre)}" y1="${top - 4}" y2="${bottom}" stroke="#222"/>`);
  for (const t of l.ticks) {
    out.push(`<line x1="${n(t.x)}" x2="${n(t.x)}" y1="${bottom}" y2="${bottom + 4}" stroke="#222"/>`);
    out.push(text(t.label));
  }
  out.push(...l.captions.map(text));
  out.push('</svg>');
  return out.join('\n');
}
