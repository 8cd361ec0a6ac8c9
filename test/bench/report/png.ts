import { deflateSync } from 'node:zlib';
import type { BenchResults } from '../types.js';
import { chartBars, chartScale, tickStep } from './svg.js';

/** A 3x5 pixel font: each glyph is 5 rows of 3 bits (MSB = left). Lower case is drawn as upper case. */
const FONT: Record<string, number[]> = {
  '0': [7, 5, 5, 5, 7],
  '1': [2, 6, 2, 2, 7],
  '2': [7, 1, 7, 4, 7],
  '3': [7, 1, 7, 1, 7],
  '4': [5, 5, 7, 1, 1],
  '5': [7, 4, 7, 1, 7],
  '6': [7, 4, 7, 5, 7],
  '7': [7, 1, 2, 2, 2],
  '8': [7, 5, 7, 5, 7],
  '9': [7, 5, 7, 1, 7],
  A: [2, 5, 7, 5, 5],
  B: [6, 5, 6, 5, 6],
  C: [7, 4, 4, 4, 7],
  D: [6, 5, 5, 5, 6],
  E: [7, 4, 6, 4, 7],
  F: [7, 4, 6, 4, 4],
  G: [7, 4, 5, 5, 7],
  H: [5, 5, 7, 5, 5],
  I: [7, 2, 2, 2, 7],
  J: [1, 1, 1, 5, 7],
  K: [5, 5, 6, 5, 5],
  L: [4, 4, 4, 4, 7],
  M: [5, 7, 7, 5, 5],
  N: [6, 5, 5, 5, 5],
  O: [7, 5, 5, 5, 7],
  P: [7, 5, 7, 4, 4],
  Q: [7, 5, 5, 7, 1],
  R: [6, 5, 6, 5, 5],
  S: [7, 4, 7, 1, 7],
  T: [7, 2, 2, 2, 2],
  U: [5, 5, 5, 5, 7],
  V: [5, 5, 5, 5, 2],
  W: [5, 5, 7, 7, 5],
  X: [5, 5, 2, 5, 5],
  Y: [5, 5, 2, 2, 2],
  Z: [7, 1, 2, 4, 7],
  '.': [0, 0, 0, 0, 2],
  '-': [0, 0, 7, 0, 0],
  '(': [1, 2, 2, 2, 1],
  ')': [4, 2, 2, 2, 4],
  '/': [1, 1, 2, 4, 4],
  ',': [0, 0, 0, 2, 4],
  '<': [1, 2, 4, 2, 1],
  '>': [4, 2, 1, 2, 4],
  '=': [0, 7, 0, 7, 0],
  ':': [0, 2, 0, 2, 0],
  ' ': [0, 0, 0, 0, 0],
  _: [0, 0, 0, 0, 7],
};

type RGB = [number, number, number];

/** A tiny RGB canvas that encodes itself as PNG (zlib from node). */
export class Canvas {
  readonly px: Uint8Array;
  constructor(
    readonly w: number,
    readonly h: number,
    bg: RGB = [255, 255, 255],
  ) {
    this.px = new Uint8Array(w * h * 3);
    for (let i = 0; i < w * h; i++) this.px.set(bg, i * 3);
  }
  set(x: number, y: number, c: RGB): void {
    x = Math.round(x);
    y = Math.round(y);
    if (x >= 0 && y >= 0 && x < this.w && y < this.h) this.px.set(c, (y * this.w + x) * 3);
  }
  rect(x: number, y: number, w: number, h: number, c: RGB): void {
    for (let j = 0; j < h; j++) for (let i = 0; i < w; i++) this.set(x + i, y + j, c);
  }
  vline(x: number, y0: number, y1: number, c: RGB, dash = 0): void {
    for (let y = y0; y <= y1; y++) if (!dash || Math.floor((y - y0) / dash) % 2 === 0) this.set(x, y, c);
  }
  hline(x0: number, x1: number, y: number, c: RGB): void {
    for (let x = x0; x <= x1; x++) this.set(x, y, c);
  }
  /** Text at scale `s` (each font pixel s x s); returns the width drawn. */
  text(x: number, y: number, str: string, c: RGB = [0, 0, 0], s = 2): number {
    let cx = x;
    for (const ch of str.toUpperCase()) {
      const g = FONT[ch] ?? FONT['-'];
      g.forEach((row, j) => {
        for (let i = 0; i < 3; i++) if (row & (4 >> i)) this.rect(cx + i * s, y + j * s, s, s, c);
      });
      cx += 4 * s;
    }
    return cx - x;
  }
  png(): Buffer {
    const raw = Buffer.alloc((this.w * 3 + 1) * this.h);
    for (let y = 0; y < this.h; y++) {
      raw[y * (this.w * 3 + 1)] = 0; // filter: none
      Buffer.from(this.px.buffer, this.px.byteOffset + y * this.w * 3, this.w * 3).copy(raw, y * (this.w * 3 + 1) + 1);
    }
    const ihdr = Buffer.alloc(13);
    ihdr.writeUInt32BE(this.w, 0);
    ihdr.writeUInt32BE(this.h, 4);
    ihdr[8] = 8;
    ihdr[9] = 2; // 8-bit RGB
    return Buffer.concat([
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
      chunk('IHDR', ihdr),
      chunk('IDAT', deflateSync(raw)),
      chunk('IEND', Buffer.alloc(0)),
    ]);
  }
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
/** CRC-32 (IEEE, as PNG chunks and zlib use it) of `b`. */
export function crc32(b: Uint8Array): number {
  let c = 0xffffffff;
  for (const x of b) c = CRC_TABLE[(c ^ x) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}

/** The ratio chart as a PNG (same content as the SVG, in a pixel font). */
export function renderPng(res: BenchResults): Buffer {
  const bars = chartBars(res);
  const rowH = 24,
    left = 330,
    plotW = 520,
    top = 40;
  const h = top + Math.max(1, bars.length) * rowH + 40;
  const c = new Canvas(left + plotW + 60, h);
  const scale = chartScale(bars);
  const x = (v: number) => Math.round(left + (v / scale) * plotW);
  c.text(10, 10, `TSVMM VS PEERS: RATIO OURS/PEER (MEDIAN, WHISKERS MIN-MAX) ${res.repeats} REPEATS`);
  bars.forEach((b, i) => {
    const y = top + i * rowH;
    const label = `${b.label} ${b.better === 'lower' ? 'LOW' : 'HIGH'}`;
    c.text(left - 8 - label.length * 8, y + 6, label);
    const good = b.better === 'lower' ? b.median <= 1 : b.median >= 1;
    c.rect(left, y + 4, Math.max(1, x(b.median) - left), 15, good ? [76, 154, 42] : [200, 85, 61]);
    c.hline(x(b.min), x(b.max), y + 11, [0, 0, 0]);
    c.vline(x(b.min), y + 8, y + 14, [0, 0, 0]);
    c.vline(x(b.max), y + 8, y + 14, [0, 0, 0]);
    c.text(x(b.max) + 6, y + 6, b.median.toFixed(2));
    if (b.target !== undefined) c.vline(x(b.target), y + 1, y + 22, [31, 95, 191], 3);
  });
  const base = top + bars.length * rowH;
  c.vline(x(1), top, base, [51, 51, 51], 4);
  c.hline(left, left + plotW, base, [0, 0, 0]);
  for (let v = 0; v <= scale + 1e-9; v += tickStep(scale)) {
    c.vline(x(v), base, base + 4, [0, 0, 0]);
    c.text(x(v) - 14, base + 8, v.toFixed(2));
  }
  return c.png();
}
