import * as fs from 'node:fs';
import { promisify } from 'node:util';
import type { DiskBackend, DiskOpenOptions, DiskShape } from '../../core/block/disk.js';
import { lockImage } from '../../core/block/image-lock.js';
import { clearNonblock, OPEN_NONBLOCK, requireRegularFile } from '../../core/block/regular-file.js';
import {
  c,
  ERRNO,
  O_CLOEXEC,
  FALLOC_FL_KEEP_SIZE,
  FALLOC_FL_PUNCH_HOLE,
  FALLOC_FL_ZERO_RANGE,
  koffi,
} from '../../core/native/libc.js';
import { alignedBuffer } from './aligned-buffer.js';
import { MEMORY_FS_INLINE_READ_MAX, MEMORY_FS_INLINE_WRITE_MAX, onMemoryFs } from '../../core/block/memory-fs.js';
import { NOWAIT_UNSUPPORTED, readNoWait } from './nowait-read.js';
import { RawDiskError } from './errors.js';

/** preadv / pwritev on the libuv pool; resolve with the byte count. */
const readv = (fd: number, b: Uint8Array[], pos: number): Promise<number> =>
  new Promise((res, rej) => fs.readv(fd, b, pos, (e, n) => (e ? rej(e) : res(n))));
const writev = (fd: number, b: Uint8Array[], pos: number): Promise<number> =>
  new Promise((res, rej) => fs.writev(fd, b, pos, (e, n) => (e ? rej(e) : res(n))));
const fdatasync = promisify(fs.fdatasync);
const fsClose = promisify(fs.close);

/** Alignment used for O_DIRECT offsets, lengths and bounce buffers (safe for 512e and 4Kn devices). */
export const DIRECT_ALIGN = 4096;
const IOV_MAX = 1024;
const ZERO_CHUNK = 1 << 20;
const BLKGETSIZE64 = 0x80081272;
/** Offsets stay below 2^53 so they are exact JS numbers for the libuv calls. */
const MAX_SIZE = BigInt(Number.MAX_SAFE_INTEGER);
/** Buffered reads up to this size first try the page cache on the main thread (./nowait-read.ts). */
export const NOWAIT_READ_MAX = 256 * 1024;

/**
 * A raw image file (or block device) as a DiskBackend. I/O goes through the libuv
 * threadpool (preadv/pwritev with positions, fdatasync; fallocate via koffi's async
 * call) so the main loop never waits on the disk: see plugins/virtio-blk/README.md
 * for the measurements behind that choice. Exception: a buffered read up to
 * NOWAIT_READ_MAX first asks the page cache with preadv2(RWF_NOWAIT) on the calling
 * thread (never blocks on the disk; the kernel says EAGAIN instead), which saves the
 * pool round trip for cached blocks; on tmpfs/ramfs, which refuse RWF_NOWAIT and have no
 * device to wait for, reads up to MEMORY_FS_INLINE_READ_MAX (2 MiB) are plain preadv calls
 * (`inMemory`). With `direct`, the file is opened with O_DIRECT and data passes through
 * 4 KiB-aligned bounce buffers; offsets and lengths must then be 4 KiB multiples (the device advertises blk_size 4096).
 * Owns its fd: close() waits for in-flight I/O, then closes it (which drops its QEMU-style
 * image locks, core/block/image-lock.ts). FIFOs and character devices are refused at open.
 */
export class RawFileDisk implements DiskBackend {
  readonly supportsDiscard = true;
  readonly supportsWriteZeroes = true;
  /** Reads answered from the page cache without the threadpool (statistics). */
  cacheHits = 0;
  /** Writes (and flushes) of an image on tmpfs/ramfs done on the calling thread (statistics, tests). */
  inlineWrites = 0;
  /** Try RWF_NOWAIT reads first (false: every read takes the threadpool). */
  noWaitReads = true;
  /** A regular file on tmpfs/ramfs: reads up to 2 MiB are plain preadv calls on the calling thread (onMemoryFs). */
  readonly inMemory: boolean;
  private closed = false;
  private readonly inflight = new Set<Promise<unknown>>();
  /** fallocate modes the filesystem refused with EOPNOTSUPP; later calls skip straight to the fallback. */
  private readonly unsupportedModes = new Set<number>();

  private constructor(
    private readonly fd: number,
    readonly path: string,
    readonly size: bigint,
    readonly readOnly: boolean,
    readonly direct: boolean,
  ) {
    this.inMemory = !direct && fs.fstatSync(fd).isFile() && onMemoryFs(fd);
  }

  get blockSize(): number {
    return rawBlockSize(this.direct);
  }

  static open(opts: DiskOpenOptions): RawFileDisk {
    const fd = openImageFd(opts.path, opts.readOnly ? fs.constants.O_RDONLY : fs.constants.O_RDWR, opts.direct);
    try {
      // QEMU's lock bytes: no other vmm or QEMU process writes this disk while we have it.
      lockImage(fd, opts.path, opts.readOnly ? 'read-only' : 'read-write');
      return new RawFileDisk(fd, opts.path, checkedSize(fd, opts.path), opts.readOnly, opts.direct ?? false);
    } catch (e) {
      fs.closeSync(fd);
      throw asOpenError(e, opts.path);
    }
  }

  /**
   * The shape `open(opts)` would give (DiskFormat.describe): the file opened read-only for its size, nothing locked,
   * nothing written, the fd closed again.
   */
  static describe(opts: DiskOpenOptions): DiskShape {
    const fd = openImageFd(opts.path, fs.constants.O_RDONLY, false);
    try {
      const size = checkedSize(fd, opts.path);
      return {
        size,
        readOnly: opts.readOnly,
        blockSize: rawBlockSize(opts.direct ?? false),
        supportsDiscard: true,
        supportsWriteZeroes: true,
      };
    } catch (e) {
      throw asOpenError(e, opts.path);
    } finally {
      fs.closeSync(fd);
    }
  }

  read(offset: bigint, into: Uint8Array[]): Promise<void> {
    if (this.inMemory && this.noWaitReads && !this.closed) {
      // tmpfs/ramfs: done here at once, with no async frame or in-flight entry (nothing stays in flight).
      try {
        const len = total(into);
        if (len > 0 && len <= MEMORY_FS_INLINE_READ_MAX) {
          const pos = this.range('read', offset, BigInt(len), false);
          if (readInMemory(this.fd, into, pos) === len) {
            this.cacheHits++;
            return DONE;
          }
        }
      } catch (e) {
        return Promise.reject(e);
      }
    }
    return this.track(async () => {
      const len = total(into);
      let pos = this.range('read', offset, BigInt(len), false);
      if (this.direct) {
        this.aligned('read', pos, len);
        const bounce = alignedBuffer(len, DIRECT_ALIGN);
        await this.transfer('read', [bounce], pos);
        scatter(bounce, into);
        return;
      }
      let bufs = into;
      if (len > 0 && len <= (this.inMemory ? MEMORY_FS_INLINE_READ_MAX : NOWAIT_READ_MAX) && this.noWaitReads) {
        // Cached data is copied here at once; only what the page cache lacks goes to the pool.
        const n = this.inMemory ? readInMemory(this.fd, into, pos) : readNoWait(this.fd, into, pos);
        if (n >= len) {
          this.cacheHits++;
          return;
        }
        if (n > 0) {
          pos += n;
          bufs = advance(into, n);
        } else if (n === NOWAIT_UNSUPPORTED) this.noWaitReads = false; // e.g. a filesystem without RWF_NOWAIT
      }
      await this.transfer('read', bufs, pos);
    });
  }

  write(offset: bigint, from: Uint8Array[]): Promise<void> {
    if (this.inMemory && !this.closed) {
      // tmpfs/ramfs: a memcpy into the page cache, done here at once (MEMORY_FS_INLINE_WRITE_MAX).
      try {
        const len = total(from);
        if (len > 0 && len <= MEMORY_FS_INLINE_WRITE_MAX && from.length <= IOV_MAX) {
          const pos = this.range('write', offset, BigInt(len), true);
          if (writeInMemory(this.fd, from, pos) === len) {
            this.inlineWrites++;
            return DONE;
          }
          // Short or failed (ENOSPC...): the pool path below writes again from the start, and reports.
        }
      } catch (e) {
        return Promise.reject(e);
      }
    }
    return this.track(async () => {
      const len = total(from);
      const pos = this.range('write', offset, BigInt(len), true);
      if (this.direct) {
        this.aligned('write', pos, len);
        const bounce = alignedBuffer(len, DIRECT_ALIGN);
        gather(from, bounce);
        await this.transfer('write', [bounce], pos);
      } else {
        await this.transfer('write', from, pos);
      }
    });
  }

  flush(): Promise<void> {
    if (this.inMemory && !this.readOnly && !this.closed) {
      // tmpfs/ramfs keep no dirty data to write back: fdatasync returns at once, so no pool round trip for it.
      try {
        fs.fdatasyncSync(this.fd);
        this.inlineWrites++;
        return DONE;
      } catch {
        // the pool path below reports it
      }
    }
    return this.track(async () => {
      if (this.readOnly) return;
      try {
        await fdatasync(this.fd);
      } catch (e) {
        throw this.ioError('flush', 0, e);
      }
    });
  }

  /** Punches a hole (the host file gives the blocks back); unsupported filesystems make it a no-op. */
  discard(offset: bigint, length: bigint): Promise<void> {
    return this.track(async () => {
      const pos = this.range('discard', offset, length, true);
      if (length === 0n) return;
      await this.fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, pos, Number(length), async () => {});
    });
  }

  /** Zeroes a range: punch a hole when unmapping is allowed, else ZERO_RANGE; writes zeros where neither works. */
  writeZeroes(offset: bigint, length: bigint, mayUnmap: boolean): Promise<void> {
    return this.track(async () => {
      const pos = this.range('write-zeroes', offset, length, true);
      const len = Number(length);
      if (len === 0) return;
      const writeZeros = (): Promise<void> => this.writeZeroBuffers(pos, len);
      const zeroRange = (): Promise<void> =>
        this.fallocate(FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, pos, len, writeZeros);
      if (mayUnmap) await this.fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, pos, len, zeroRange);
      else await zeroRange();
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([...this.inflight]);
    await fsClose(this.fd);
  }

  /** Registers an operation so close() can wait for it. */
  private track(op: () => Promise<void>): Promise<void> {
    if (this.closed) return Promise.reject(new RawDiskError('Closed', `${this.path} is closed`, { path: this.path }));
    const p = op();
    this.inflight.add(p);
    const done = (): void => {
      this.inflight.delete(p);
    };
    p.then(done, done);
    return p;
  }

  /** Checks [offset, offset+length) against the disk and returns the offset as a number. */
  private range(what: string, offset: bigint, length: bigint, forWrite: boolean): number {
    if (forWrite && this.readOnly)
      throw new RawDiskError('ReadOnly', `${what}: ${this.path} is read-only`, { path: this.path });
    if (offset < 0n || length < 0n || offset + length > this.size) {
      throw new RawDiskError(
        'OutOfRange',
        `${what}: [${offset}, +${length}) is outside the ${this.size}-byte disk ${this.path}`,
        { offset, length, size: this.size },
      );
    }
    return Number(offset);
  }

  private aligned(what: string, pos: number, len: number): void {
    if (pos % DIRECT_ALIGN !== 0 || len % DIRECT_ALIGN !== 0) {
      throw new RawDiskError(
        'Unaligned',
        `${what}: O_DIRECT needs ${DIRECT_ALIGN}-byte aligned offset and length (got ${pos}, ${len})`,
        { pos, len },
      );
    }
  }

  /** preadv/pwritev on the pool until every buffer is done; a read past end of file zero-fills. */
  private async transfer(what: 'read' | 'write', bufs: Uint8Array[], pos: number): Promise<void> {
    let pending = bufs.filter((b) => b.length > 0);
    while (pending.length > 0) {
      const batch = pending.slice(0, IOV_MAX);
      let n: number;
      try {
        n = what === 'read' ? await readv(this.fd, batch, pos) : await writev(this.fd, batch, pos);
      } catch (e) {
        throw this.ioError(what, pos, e);
      }
      if (n === 0) {
        if (what === 'write') throw new RawDiskError('Io', `write: ${this.path} accepted no bytes at ${pos}`, { pos });
        for (const b of pending) b.fill(0); // the file shrank under us: the rest reads as zeros
        return;
      }
      pos += n;
      pending = advance(pending, n);
    }
  }

  /**
   * fallocate on the libuv pool (koffi async). koffi does not carry errno back from the
   * pool, so a failed call is repeated synchronously (same range, idempotent) to learn
   * why; EOPNOTSUPP marks the mode unsupported and runs `fallback`.
   */
  private async fallocate(mode: number, pos: number, len: number, fallback: () => Promise<void>): Promise<void> {
    if (this.unsupportedModes.has(mode)) return fallback();
    // SAFETY: the fd is owned by this backend and stays open until close(), which waits for us.
    const r = await new Promise<number>((res, rej) => {
      (c.fallocate as unknown as { async: (...a: unknown[]) => void }).async(
        this.fd,
        mode,
        pos,
        len,
        (err: unknown, v: number) => (err ? rej(err) : res(v)),
      );
    });
    if (r === 0) return;
    const again = c.fallocate(this.fd, mode, pos, len) as number;
    if (again === 0) return;
    const e = koffi.errno();
    if (e === ERRNO.EOPNOTSUPP || e === ERRNO.ENOSYS || e === ERRNO.EINVAL) {
      this.unsupportedModes.add(mode);
      return fallback();
    }
    throw new RawDiskError('Io', `fallocate(mode ${mode}) on ${this.path} at ${pos}+${len} failed: errno ${e}`, {
      pos,
      len,
      errno: e,
    });
  }

  private async writeZeroBuffers(pos: number, len: number): Promise<void> {
    const zero = this.direct
      ? alignedBuffer(Math.min(ZERO_CHUNK, len), DIRECT_ALIGN)
      : new Uint8Array(Math.min(ZERO_CHUNK, len));
    if (this.direct) this.aligned('write-zeroes', pos, len);
    for (let done = 0; done < len;) {
      const n = Math.min(zero.length, len - done);
      await this.transfer('write', [zero.subarray(0, n)], pos + done);
      done += n;
    }
  }

  private ioError(what: string, pos: number, e: unknown): RawDiskError {
    return new RawDiskError(
      'Io',
      `${what} on ${this.path} at ${pos} failed: ${(e as Error).message}`,
      { pos, path: this.path },
      { cause: e },
    );
  }
}

/** The logical block size a raw disk shows: O_DIRECT's alignment, else 512. */
const rawBlockSize = (direct: boolean): number => (direct ? DIRECT_ALIGN : 512);

/**
 * Opens a raw image's fd with `access` (O_RDONLY / O_RDWR) and `direct`, and checks it is a regular file or block
 * device (FIFOs and character devices are refused without blocking); the caller owns the fd.
 */
function openImageFd(path: string, access: number, direct: boolean | undefined): number {
  // OPEN_NONBLOCK: a FIFO must not block open()
  const flags = access | O_CLOEXEC | (direct ? fs.constants.O_DIRECT : 0) | OPEN_NONBLOCK;
  let fd: number;
  try {
    fd = fs.openSync(path, flags);
  } catch (e) {
    const hint = direct ? ' (does the filesystem support O_DIRECT? try direct: false)' : '';
    throw new RawDiskError(
      'Open',
      `cannot open disk image ${path}: ${(e as Error).message}${hint}`,
      { path },
      { cause: e },
    );
  }
  try {
    requireRegularFile(fs.fstatSync(fd), path, 'disk image', true);
    clearNonblock(fd);
    return fd;
  } catch (e) {
    fs.closeSync(fd);
    throw asOpenError(e, path);
  }
}

/** The image's size in bytes, refused above 2^53-1. */
function checkedSize(fd: number, path: string): bigint {
  const size = sizeOf(fd, path);
  if (size > MAX_SIZE)
    throw new RawDiskError('TooLarge', `${path} is ${size} bytes; at most 2^53-1 supported`, { path, size });
  return size;
}

/** An open's failure as a RawDiskError (kept as it is when it is one). */
const asOpenError = (e: unknown, path: string): RawDiskError =>
  e instanceof RawDiskError ? e : new RawDiskError('Open', (e as Error).message, { path }, { cause: e });

function sizeOf(fd: number, path: string): bigint {
  const st = fs.fstatSync(fd, { bigint: true });
  if (!st.isBlockDevice()) return st.size;
  const out = new BigUint64Array(1);
  // SAFETY: BLKGETSIZE64 writes one u64 into `out`, which outlives the call; fd owned by the caller.
  if (c.ioctlPtr(fd, BLKGETSIZE64, out) !== 0)
    throw new RawDiskError('Open', `BLKGETSIZE64 on ${path} failed: errno ${koffi.errno()}`, { path });
  return out[0];
}

/** preadv on the calling thread, for files on tmpfs/ramfs; -1 on any error (the pool then reports it). */
function readInMemory(fd: number, into: Uint8Array[], pos: number): number {
  try {
    return fs.readvSync(fd, into, pos);
  } catch {
    return -1;
  }
}

/** pwritev on the calling thread, for files on tmpfs/ramfs; -1 on any error (the pool then writes and reports). */
function writeInMemory(fd: number, from: Uint8Array[], pos: number): number {
  try {
    return fs.writevSync(fd, from, pos);
  } catch {
    return -1;
  }
}

/** What a read or write finished on the calling thread returns (one settled promise for all of them). */
const DONE: Promise<void> = Promise.resolve();

function total(bufs: Uint8Array[]): number {
  let n = 0;
  for (let i = 0; i < bufs.length; i++) n += bufs[i]!.length;
  return n;
}

/** Drops the first `n` bytes from a list of buffers. */
function advance(bufs: Uint8Array[], n: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const b of bufs) {
    if (n >= b.length) {
      n -= b.length;
      continue;
    }
    out.push(n > 0 ? b.subarray(n) : b);
    n = 0;
  }
  return out;
}

function scatter(src: Uint8Array, into: Uint8Array[]): void {
  let o = 0;
  for (const b of into) {
    b.set(src.subarray(o, o + b.length));
    o += b.length;
  }
}

function gather(from: Uint8Array[], dst: Uint8Array): void {
  let o = 0;
  for (const b of from) {
    dst.set(b, o);
    o += b.length;
  }
}
