import { fail } from './errors.js';

/**
 * Above this many host clusters `check` refuses to start: its counters take 2 bytes (plus one
 * bit) per cluster of the file, so this bounds them to ~288 MiB (a 64 KiB-cluster image of 8 TiB,
 * a 512-byte-cluster image of 64 GiB).
 */
export const MAX_CHECK_CLUSTERS = 2 ** 27;

const SATURATED = 0xffff;

/**
 * References per host cluster, in a typed array sized by the file (one 16-bit counter per
 * cluster; the rare counts above 65534 go to a side map), plus one marker bit per cluster.
 * Memory is proportional to the file's real extent, never to what a header claims.
 */
export class RefCounter {
  readonly clusters: number;
  private readonly counts: Uint16Array;
  private readonly big = new Map<number, number>();
  private readonly marks: Uint8Array;

  constructor(fileSize: number, clusterSize: number) {
    this.clusters = Math.ceil(fileSize / clusterSize);
    if (this.clusters > MAX_CHECK_CLUSTERS) {
      fail(
        'TooLarge',
        `the image file spans ${this.clusters} clusters of ${clusterSize} bytes; check handles at most ${MAX_CHECK_CLUSTERS}`,
        { clusters: this.clusters },
      );
    }
    this.counts = new Uint16Array(this.clusters);
    this.marks = new Uint8Array(Math.ceil(this.clusters / 8));
  }

  /** Adds `n` references to cluster `c` (which must be below `clusters`). */
  add(c: number, n = 1): void {
    const v = this.counts[c]!;
    if (v === SATURATED) this.big.set(c, this.big.get(c)! + n);
    else if (v + n >= SATURATED) {
      this.counts[c] = SATURATED;
      this.big.set(c, v + n);
    } else this.counts[c] = v + n;
  }

  get(c: number): number {
    if (c >= this.clusters) return 0;
    const v = this.counts[c]!;
    return v === SATURATED ? this.big.get(c)! : v;
  }

  mark(c: number): void {
    this.marks[c >> 3] = this.marks[c >> 3]! | (1 << (c & 7));
  }

  marked(c: number): boolean {
    return (this.marks[c >> 3]! & (1 << (c & 7))) !== 0;
  }

  /** Marked clusters in increasing order. */
  *markedClusters(): Generator<number> {
    for (let b = 0; b < this.marks.length; b++) {
      const m = this.marks[b]!;
      if (m === 0) continue;
      for (let k = 0; k < 8; k++) if (m & (1 << k)) yield b * 8 + k;
    }
  }
}
