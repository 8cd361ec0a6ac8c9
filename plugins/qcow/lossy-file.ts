import { PositionedMemory } from './memory-positioned.js';

const SECTOR = 512;

/**
 * Test double: a file in memory with a page cache that a power loss can lose. Writes land in the cache
 * (what reads see); `datasync` makes them durable. `crash(rand)` gives the bytes a power cut would leave:
 * each 512-byte sector holds its durable contents or the contents after any prefix of the writes to it
 * since the last datasync (the kernel writes dirty pages back whenever and in any order). Size changes
 * (truncate, writes past the end) count as durable at once. HostFile.over takes `asPositioned()`.
 */
export class LossyFile extends PositionedMemory {
  private durable: Uint8Array;
  private cached: Uint8Array;
  private size: number;
  /** Writes since the last datasync, in order. */
  private pending: Array<{ pos: number; data: Uint8Array }> = [];
  /** How many times datasync ran (tests). */
  syncs = 0;

  constructor(initial: Uint8Array) {
    super();
    this.durable = initial.slice();
    this.cached = initial.slice();
    this.size = initial.length;
  }

  /** What the file holds now (the page cache: a process kill keeps this). */
  current(): Uint8Array {
    return this.cached.slice(0, this.size);
  }

  /** What a power cut now could leave on disk, with `rand(n)` (0 <= r < n) choosing for each sector. */
  crash(rand: (n: number) => number): Uint8Array {
    const out = this.durable.slice(0, this.size);
    const bySector = new Map<number, number[]>();
    this.pending.forEach((w, k) => {
      for (let s = Math.floor(w.pos / SECTOR); s * SECTOR < w.pos + w.data.length; s++) {
        const list = bySector.get(s) ?? [];
        list.push(k);
        bySector.set(s, list);
      }
    });
    for (const [s, writes] of bySector) {
      const keep = rand(writes.length + 1); // the first `keep` writes to this sector reached the disk
      for (const k of writes.slice(0, keep)) {
        const w = this.pending[k]!;
        const from = Math.max(w.pos, s * SECTOR);
        const to = Math.min(w.pos + w.data.length, (s + 1) * SECTOR, this.size);
        if (from < to) out.set(w.data.subarray(from - w.pos, to - w.pos), from);
      }
    }
    return out;
  }

  async truncate(len = 0): Promise<void> {
    this.resize(len);
    this.cached.fill(0, len);
    this.durable.fill(0, len);
    this.pending = this.pending.filter((w) => w.pos < len);
    this.size = len;
  }

  async datasync(): Promise<void> {
    for (const w of this.pending) this.durable.set(w.data.subarray(0, Math.max(0, this.size - w.pos)), w.pos);
    this.pending = [];
    this.syncs++;
  }

  protected get length(): number {
    return this.size;
  }

  protected load(dst: Uint8Array, pos: number): void {
    dst.set(this.cached.subarray(pos, pos + dst.length));
  }

  protected store(src: Uint8Array, pos: number): void {
    const data = src.slice(); // kept until the next datasync
    this.resize(pos + data.length);
    this.size = Math.max(this.size, pos + data.length);
    this.cached.set(data, pos);
    this.pending.push({ pos, data });
  }

  /** Makes both buffers hold at least `len` bytes (zeros past the old end). */
  private resize(len: number): void {
    if (len <= this.cached.length) return;
    const cap = Math.max(len, this.cached.length * 2);
    const grow = (b: Uint8Array): Uint8Array => {
      const n = new Uint8Array(cap);
      n.set(b);
      return n;
    };
    this.cached = grow(this.cached);
    this.durable = grow(this.durable);
  }
}
