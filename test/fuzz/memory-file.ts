import { PositionedMemory } from '../../plugins/qcow/memory-positioned.js';

const CHUNK = 4096;

/**
 * A sparse file in memory with the FileHandle calls HostFile uses (positioned read, write, writev,
 * truncate, datasync, close): the qcow2 fuzz target opens thousands of images a second on it instead of
 * the file system. Only chunks written hold memory, so a write far out costs what it writes.
 */
export class MemoryFile extends PositionedMemory {
  private readonly chunks = new Map<number, Uint8Array>();
  private size: number;

  constructor(initial: Uint8Array) {
    super();
    this.size = 0;
    this.put(initial, 0);
  }

  /** The file's bytes (for checks in tests). */
  bytes(): Uint8Array {
    const out = new Uint8Array(this.size);
    this.get(out, 0);
    return out;
  }

  async truncate(len = 0): Promise<void> {
    if (len < this.size) {
      for (const k of [...this.chunks.keys()]) if (k * CHUNK >= len) this.chunks.delete(k);
      const last = this.chunks.get(Math.floor(len / CHUNK));
      last?.fill(0, len % CHUNK);
    }
    this.size = len;
  }

  async datasync(): Promise<void> {}

  protected get length(): number {
    return this.size;
  }

  protected load(dst: Uint8Array, pos: number): void {
    this.get(dst, pos);
  }

  protected store(src: Uint8Array, pos: number): void {
    this.put(src, pos);
  }

  private get(dst: Uint8Array, pos: number): void {
    for (let done = 0; done < dst.length;) {
      const k = Math.floor((pos + done) / CHUNK);
      const off = (pos + done) % CHUNK;
      const n = Math.min(CHUNK - off, dst.length - done);
      const c = this.chunks.get(k);
      if (c) dst.set(c.subarray(off, off + n), done);
      else dst.fill(0, done, done + n);
      done += n;
    }
  }

  private put(src: Uint8Array, pos: number): void {
    for (let done = 0; done < src.length;) {
      const k = Math.floor((pos + done) / CHUNK);
      const off = (pos + done) % CHUNK;
      const n = Math.min(CHUNK - off, src.length - done);
      let c = this.chunks.get(k);
      if (!c) this.chunks.set(k, (c = new Uint8Array(CHUNK)));
      c.set(src.subarray(done, done + n), off);
      done += n;
    }
    this.size = Math.max(this.size, pos + src.length);
  }
}
