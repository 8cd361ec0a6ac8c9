import type { PositionedFile } from './host-file.js';

/**
 * The FileHandle calls HostFile uses (positioned read, readv, write, writev, close), over a file kept in memory by a
 * subclass: it says how long the file is and how bytes are loaded and stored. Test doubles build on it
 * (lossy-file.ts here, test/fuzz/memory-file.ts); `truncate` and `datasync` are theirs.
 */
export abstract class PositionedMemory {
  readonly fd = -1;
  /** Current length of the file. */
  protected abstract get length(): number;
  /** Copies the file's bytes at `pos` into `dst` (within the file). */
  protected abstract load(dst: Uint8Array, pos: number): void;
  /** Stores `src` at `pos`, growing the file; `src` is the caller's buffer (copy it to keep it). */
  protected abstract store(src: Uint8Array, pos: number): void;

  /** The PositionedFile view HostFile.over takes. */
  asPositioned(): PositionedFile {
    return this as unknown as PositionedFile;
  }

  async read(buf: Uint8Array, offset: number, length: number, position: number) {
    const n = Math.max(0, Math.min(length, this.length - position));
    this.load(buf.subarray(offset, offset + n), position);
    return { bytesRead: n, buffer: buf };
  }

  async readv(bufs: Uint8Array[], position: number) {
    let at = position;
    for (const b of bufs) at += (await this.read(b, 0, b.length, at)).bytesRead;
    return { bytesRead: at - position, buffers: bufs };
  }

  async write(buf: Uint8Array, offset: number, length: number, position: number) {
    this.store(buf.subarray(offset, offset + length), position);
    return { bytesWritten: length, buffer: buf };
  }

  async writev(bufs: Uint8Array[], position: number) {
    let at = position;
    for (const b of bufs) {
      this.store(b, at);
      at += b.length;
    }
    return { bytesWritten: at - position, buffers: bufs };
  }

  async close(): Promise<void> {}
}
