import type { PositionedFile } from '../../plugins/qcow/host-file.js';

const CHUNK = 4096;

/**
 * A sparse file in memory with the FileHandle calls HostFile uses (positioned read, write, writev,
 * truncate, datasync, close): the qcow2 fuzz target opens thousands of images a second on it instead of
 * the file system. Only chunks written hold memory, so a write far out costs what it writes.
 */
export class MemoryFile {
  readonly fd = -1;
  private readonly chunks = new Map<number, Uint8Array>();
  private size: number;

  constructor(initial: Uint8Array) {
    this.size = 0;
    this.put(initial, 0);
  }

  /** The PositionedFile view HostFile.over takes. */
  asPositioned(): PositionedFile {
    return this as unknown as PositionedFile;
  }

  /** The file's bytes (for checks in tests). */
  bytes(): Uint8Array {
    const out = new Uint8Array(this.size);
    this.get(out, 0);
    return out;
  }

  async read(buf: Uint8Array, offset: number, length: number, position: number) {
    const n = Math.max(0, Math.min(length, this.size - position));
    this.get(buf.subarray(offset, offset + n), position);
    return { bytesRead: n, buffer: buf };
  }

  async readv(bufs: Uint8Array[], position: number) {
    let at = position;
    for (const b of bufs) at += (await this.read(b, 0, b.length, at)).bytesRead;
    return { bytesRead: at - position, buffers: bufs };
  }

  async write(buf: Uint8Array, offset: number, length: number, position: number) {
    this.put(buf.subarray(offset, offset + length), position);
    return { bytesWritten: length, buffer: buf };
  }

  async writev(bufs: Uint8Array[], position: number) {
    let at = position;
    for (const b of bufs) {
      this.put(b, at);
      at += b.length;
    }
    return { bytesWritten: at - position, buffers: bufs };
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
  async close(): Promise<void> {}

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
