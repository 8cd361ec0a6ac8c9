/**
 * `node dist/test/bench/report/chart-cli.js <results.json> [out-base]`: draws the chart of a bench results file
 * again (bench-results/<timestamp>.json, or one written by hand with the same shape) as <out-base>.svg and .png
 * (default: beside the JSON, same name).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import type { BenchResults } from '../types.js';
import { renderPng } from './png.js';
import { renderSvg } from './svg.js';

const [json, base = json?.replace(/\.json$/, '')] = process.argv.slice(2);
if (!json) {
  process.stderr.write('usage: chart-cli.js <results.json> [out-base]\n');
  process.exit(2);
}
const res = JSON.parse(readFileSync(json, 'utf8')) as BenchResults;
writeFileSync(`${base}.svg`, renderSvg(res));
writeFileSync(`${base}.png`, renderPng(res));
process.stdout.write(`written: ${base}.svg, ${base}.png\n`);
