import { ERRNO, koffi } from '../../core/native/libc.js';

/**
 * preadv2(..., RWF_NOWAIT) on the calling thread: copies what the page cache already holds and
 * never waits for the disk (the kernel answers EAGAIN instead). A small read of a cached block
 * then costs a few µs instead of a libuv threadpool round trip (~20-70 µs here: queue, thread
 * wake-up, completion back through the loop); see plugins/raw-disk/README.md.
 */
const RWF_NOWAIT = 0x08;

interface Binding {
  preadv2: (fd: number, iov: { base: Uint8Array; len: number }[], n: number, pos: number, flags: number) => number;
}
let binding: Binding | null | undefined;

function bind(): Binding | null {
  if (binding !== undefined) return binding;
  try {
    const lib = koffi.load('libc.so.6');
    const iovec = koffi.struct('raw_disk_iovec', { base: 'void *', len: 'size_t' });
    // SAFETY: every iovec base is a Uint8Array koffi pins for the call only; the fd is the caller's.
    const fn = lib.func('preadv2', 'intptr_t', ['int', koffi.pointer(iovec), 'int', 'int64_t', 'int']);
    binding = { preadv2: (fd, iov, n, pos, flags) => Number(fn(fd, iov, n, pos, flags)) };
  } catch {
    binding = null; // an old libc: everything takes the pool
  }
  return binding;
}

/** At most this many buffers per call (well below IOV_MAX). */
export const NOWAIT_MAX_BUFFERS = 64;

/** readNoWait's answer when this fd (its filesystem) or this libc cannot do it at all: stop asking. */
export const NOWAIT_UNSUPPORTED = -2;

/**
 * Reads into `bufs` at `pos` from the page cache without blocking. Returns the bytes read (may be
 * short: part of the range is not cached, or end of file), -1 when nothing could be done this way
 * now (not cached, any error), or NOWAIT_UNSUPPORTED: the caller then goes through the pool,
 * which reports real errors.
 */
export function readNoWait(fd: number, bufs: readonly Uint8Array[], pos: number): number {
  if (bufs.length === 0 || bufs.length > NOWAIT_MAX_BUFFERS) return -1;
  const b = bind();
  if (!b) return NOWAIT_UNSUPPORTED;
  const iov = bufs.map((base) => ({ base, len: base.length }));
  const n = b.preadv2(fd, iov, iov.length, pos, RWF_NOWAIT);
  if (n > 0) return n;
  if (n < 0) {
    const e = koffi.errno();
    if (e === ERRNO.EOPNOTSUPP || e === ERRNO.ENOSYS || e === ERRNO.EINVAL) return NOWAIT_UNSUPPORTED;
  }
  return -1;
}
