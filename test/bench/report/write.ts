import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BenchResults } from '../types.js';
import { renderPng } from './png.js';
import { renderSvg } from './svg.js';

/** Writes <dir>/<timestamp>.{json,svg,png} and latest.{json,svg,png}; returns the paths written. */
export function writeResults(dir: string, res: BenchResults): string[] {
  mkdirSync(dir, { recursive: true });
  const stamp = res.startedAt.replace(/[:.]/g, '-');
  const files: [string, string | Buffer][] = [
    ['json', JSON.stringify(res, null, 2) + '\n'],
    ['svg', renderSvg(res)],
  ];
  try {
    files.push(['png', renderPng(res)]);
  } catch {
    /* the SVG is enough */
  }
  const written: string[] = [];
  for (const [ext, data] of files) {
    for (const name of [stamp, 'latest']) {
      const p = join(dir, `${name}.${ext}`);
      writeFileSync(p, data);
      if (name === stamp) written.push(p);
    }
  }
  return written;
}
