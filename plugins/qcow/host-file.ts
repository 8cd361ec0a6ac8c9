import { constants, fdatasyncSync, ftruncateSync, readSync, readvSync, writevSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { lockImage, type ImageAccess } from '../../core/block/image-lock.js';
import { MEMORY_FS_INLINE_READ_MAX, MEMORY_FS_INLINE_WRITE_MAX, onMemoryFs } from '../../core/block/memory-fs.js';
import { clearNonblock, ImageFileError, OPEN_NONBLOCK, requireRegularFile } from '../../core/block/regular-file.js';
import { c, ERRNO, koffi } from '../../core/native/libc.js';
import { QcowError, fail } from './errors.js';

const SEEK_DATA = 3;
const SEEK_HOLE = 4;

/**
 * What HostFile needs of an open file: node's FileHandle, or a double over memory (HostFile.over) that
 * fuzzing uses to run many images a second. `fd` is used for SEEK_DATA only (a negative one: all data).
 */
export type PositionedFile = Pick<
  FileHandle,
  'read' | 'readv' | 'write' | 'writev' | 'truncate' | 'datasync' | 'close' | 'fd'
>;

/**
 * The image file as positioned reads and writes (pread/pwrite on the libuv pool).
 * Owns its FileHandle: close() releases the fd. Offsets are plain numbers; callers
 * guard them below 2^52 before they get here.
 */
export class HostFile {
  private closed = false;
  /** Reads done on the calling thread because the file is on tmpfs/ramfs (statistics, tests). */
  inlineReads = 0;
  /** Writes and syncs done on the calling thread because the file is on tmpfs/ramfs (statistics, tests). */
  inlineWrites = 0;

  private constructor(
    private readonly fh: PositionedFile,
    readonly path: string,
    readonly readOnly: boolean,
    private length: number,
    /**
     * The file is on tmpfs/ramfs (core/block/memory-fs.ts): a read cannot wait for a device, so one of up to
     * MEMORY_FS_INLINE_READ_MAX bytes is a pread/preadv on the calling thread instead of a libuv pool round trip;
     * likewise a write of up to MEMORY_FS_INLINE_WRITE_MAX bytes and fdatasync.
     */
    readonly inMemory = false,
  ) {}

  /**
   * Opens an image file: never blocks on a FIFO or device (refused: only regular files), and
   * takes QEMU's lock bytes for `access` (default: read-write or read-only as opened), so that
   * another vmm or QEMU process cannot write it meanwhile.
   */
  static async open(path: string, readOnly: boolean, access?: ImageAccess): Promise<HostFile> {
    let fh: FileHandle;
    try {
      fh = await open(path, (readOnly ? constants.O_RDONLY : constants.O_RDWR) | OPEN_NONBLOCK);
    } catch (e) {
      fail('Io', `cannot open ${path}: ${(e as Error).message}`, { path }, e);
    }
    try {
      const st = await fh.stat();
      requireRegularFile(st, path, 'image');
      clearNonblock(fh.fd);
      lockImage(fh.fd, path, access ?? (readOnly ? 'read-only' : 'read-write'));
      return new HostFile(fh, path, readOnly, st.size, onMemoryFs(fh.fd));
    } catch (e) {
      await fh.close();
      if (e instanceof ImageFileError) fail(e.kind === 'Locked' ? 'Locked' : 'NotAFile', e.message, { path }, e);
      throw e;
    }
  }

  /** A HostFile over an already open file of `size` bytes (no lock taken): for doubles such as fuzzing's. */
  static over(file: PositionedFile, path: string, readOnly: boolean, size: number): HostFile {
    return new HostFile(file, path, readOnly, size);
  }

  /** Current size as this process knows it (it is the only writer). */
  get size(): number {
    return this.length;
  }

  /** Reads exactly into `buf`; bytes past the end of the file read as zero. */
  async read(buf: Uint8Array, pos: number): Promise<void> {
    this.live();
    let done = 0;
    if (this.inMemory && buf.length <= MEMORY_FS_INLINE_READ_MAX) {
      try {
        done = readSync(this.fh.fd, buf, 0, buf.length, pos);
        this.inlineReads++;
        if (done === 0) buf.fill(0);
        if (done === 0 || done === buf.length) return;
      } catch {
        done = 0; // the pool path below reports it
      }
    }
    while (done < buf.length) {
      const { bytesRead } = await this.fh.read(buf, done, buf.length - done, pos + done);
      if (bytesRead === 0) {
        buf.fill(0, done);
        return;
      }
      done += bytesRead;
    }
  }

  /** Reads into several buffers back to back from `pos` (preadv); bytes past the end of the file read as zero. */
  async readv(bufs: Uint8Array[], pos: number): Promise<void> {
    this.live();
    const total = bufs.reduce((a, b) => a + b.length, 0);
    const bytesRead = this.readvInline(bufs, pos, total) ?? (await this.fh.readv(bufs, pos)).bytesRead;
    if (bytesRead === total) return;
    let skip = bytesRead; // short: end of file, or the kernel stopped early; finish buffer by buffer
    let at = pos;
    for (const b of bufs) {
      if (skip < b.length) await this.read(b.subarray(skip), at + skip);
      skip = Math.max(0, skip - b.length);
      at += b.length;
    }
  }

  /** preadv on the calling thread for a file on tmpfs/ramfs; undefined: the pool does it (and reports errors). */
  private readvInline(bufs: Uint8Array[], pos: number, total: number): number | undefined {
    if (!this.inMemory || total > MEMORY_FS_INLINE_READ_MAX) return undefined;
    try {
      const n = readvSync(this.fh.fd, bufs, pos);
      this.inlineReads++;
      return n;
    } catch {
      return undefined;
    }
  }

  async write(buf: Uint8Array, pos: number): Promise<void> {
    this.live();
    if (this.readOnly) fail('ReadOnly', `${this.path} is open read-only`);
    let done = this.inMemory && buf.length <= MEMORY_FS_INLINE_WRITE_MAX ? this.writeInline([buf], pos) : 0;
    while (done < buf.length) {
      const { bytesWritten } = await this.fh.write(buf, done, buf.length - done, pos + done);
      done += bytesWritten;
    }
    if (pos + buf.length > this.length) this.length = pos + buf.length;
  }

  /** Writes several buffers back to back from `pos` (pwritev). */
  async writev(bufs: Uint8Array[], pos: number): Promise<void> {
    this.live();
    if (this.readOnly) fail('ReadOnly', `${this.path} is open read-only`);
    let total = 0;
    for (let i = 0; i < bufs.length; i++) total += bufs[i]!.length;
    const inline = this.inMemory && total <= MEMORY_FS_INLINE_WRITE_MAX ? this.writeInline(bufs, pos) : 0;
    const bytesWritten = inline === total ? inline : (await this.fh.writev(bufs, pos)).bytesWritten;
    if (bytesWritten !== total) {
      // Short vector write: finish piece by piece.
      let skip = bytesWritten;
      let at = pos;
      for (const b of bufs) {
        if (skip >= b.length) {
          skip -= b.length;
          at += b.length;
          continue;
        }
        await this.write(b.subarray(skip), at + skip);
        at += b.length;
        skip = 0;
      }
    }
    if (pos + total > this.length) this.length = pos + total;
  }

  /**
   * pwritev on the calling thread for a file on tmpfs/ramfs: the bytes written, or 0 on any error (the caller
   * then writes from the start through the pool, which finishes a short write and reports errors).
   */
  private writeInline(bufs: Uint8Array[], pos: number): number {
    try {
      const n = writevSync(this.fh.fd, bufs, pos);
      this.inlineWrites++;
      return n;
    } catch {
      return 0;
    }
  }

  /**
   * The data extents of [from, to) by SEEK_DATA / SEEK_HOLE (one pair of lseek calls per extent);
   * a filesystem that cannot tell gives the whole range. SAFETY: lseek on our own fd, which moves
   * only the file position that the positioned reads and writes here never use.
   */
  async *dataExtents(from: number, to: number): AsyncGenerator<[number, number]> {
    this.live();
    for (let pos = from; pos < to;) {
      const data = Number(c.lseek(this.fh.fd, pos, SEEK_DATA));
      if (data < 0) {
        const e = koffi.errno();
        if (e === ERRNO.ENXIO) return; // only a hole up to the end of the file
        yield [pos, to]; // no SEEK_DATA here: assume data
        return;
      }
      if (data >= to) return;
      const hole = Number(c.lseek(this.fh.fd, data, SEEK_HOLE));
      const end = hole < 0 ? to : Math.min(hole, to);
      yield [data, end];
      pos = end;
    }
  }

  /** Grows (never shrinks) the file so that it covers `size` bytes. */
  async ensureSize(size: number): Promise<void> {
    if (size > this.length) await this.truncate(size);
  }

  async truncate(size: number): Promise<void> {
    this.live();
    let inline = false;
    if (this.inMemory) {
      try {
        ftruncateSync(this.fh.fd, size); // tmpfs/ramfs: no blocks to allocate or free on a device
        this.inlineWrites++;
        inline = true;
      } catch {
        // the pool call below reports it
      }
    }
    if (!inline) await this.fh.truncate(size);
    this.length = size;
  }

  /** The barrier: everything written so far is on stable storage. */
  async sync(): Promise<void> {
    this.live();
    if (this.readOnly) return;
    if (this.inMemory) {
      try {
        fdatasyncSync(this.fh.fd); // tmpfs/ramfs: nothing to write back, returns at once
        this.inlineWrites++;
        return;
      } catch {
        // the pool call below reports it
      }
    }
    await this.fh.datasync();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.fh.close();
  }

  private live(): void {
    if (this.closed) throw new QcowError('Closed', `${this.path} is closed`);
  }
}
