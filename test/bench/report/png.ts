import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { BenchResults } from '../types.js';
import { CHART_FONT, renderSvg } from './svg.js';

/** Where Debian's fonts-dejavu-core puts the font the chart is drawn in. */
export const CHART_FONT_FILES = [
  '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf',
  '/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf',
];

/** The resvg-js API used here (a devDependency, loaded only when a chart is drawn). */
interface ResvgModule {
  Resvg: new (
    svg: string,
    o: { font: { loadSystemFonts: boolean; fontFiles: string[]; defaultFontFamily: string }; background?: string },
  ) => { render(): { asPng(): Buffer; width: number; height: number } };
}

/**
 * The SVG chart rasterised by resvg (@resvg/resvg-js) with DejaVu Sans (fonts-dejavu-core; the system's fonts where
 * those files are missing). Throws when resvg-js is not installed (writeResults then keeps the SVG only).
 */
export function renderPng(res: BenchResults): Buffer {
  const { Resvg } = createRequire(import.meta.url)('@resvg/resvg-js') as ResvgModule;
  const fontFiles = CHART_FONT_FILES.filter((f) => existsSync(f));
  const r = new Resvg(renderSvg(res), {
    font: { loadSystemFonts: fontFiles.length === 0, fontFiles, defaultFontFamily: CHART_FONT },
    background: 'white',
  });
  return r.render().asPng();
}
