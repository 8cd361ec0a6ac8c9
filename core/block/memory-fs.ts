import { c } from '../native/libc.js';

/**
 * Reads of a file on tmpfs/ramfs up to this size are done on the calling thread (raw-disk, qcow2's HostFile): a
 * memcpy of at most 2 MiB (~0.1-0.2 ms here) instead of a libuv pool round trip, whose thread wake-up and completion
 * cost milliseconds in the nested sandbox. 2 MiB is virtio-blk's largest piece (MAX_IO_PIECE), so a guest's 1 MiB
 * read is one inline preadv.
 */
export const MEMORY_FS_INLINE_READ_MAX = 2 * 1024 * 1024;

/**
 * Writes to a file on tmpfs/ramfs up to this size are done on the calling thread as well (raw-disk, qcow2's
 * HostFile), for the same reason: a pwrite(v) there is a memcpy into the page cache (and, for a hole, page
 * allocation), never a wait for a device; a guest's 1 MiB write is one call instead of a pool round trip. A failure
 * (ENOSPC, a short write) goes to the pool path, which finishes or reports it. fdatasync on these filesystems
 * has nothing to write back, so it is done inline too.
 */
export const MEMORY_FS_INLINE_WRITE_MAX = MEMORY_FS_INLINE_READ_MAX;

/** f_type of tmpfs and ramfs (linux/magic.h). devtmpfs reports tmpfs's too: check for a regular file first. */
const MEMORY_FS = new Set([0x01021994, 0x858458f6]);

/**
 * True when the file behind `fd` is on tmpfs or ramfs: it lives in memory, so reading it never waits for a
 * device (only, for tmpfs, for swap), and a small read can be done on the calling thread instead of the libuv
 * pool. These filesystems refuse preadv2(RWF_NOWAIT) with EOPNOTSUPP (checked on Linux 6.1, the sandbox's L1,
 * and 6.18), so the page-cache shortcut of plugins/raw-disk never applies to them. Callers pass regular files
 * only (a block device node on devtmpfs would look the same). SAFETY: fstatfs on the caller's fd.
 */
export function onMemoryFs(fd: number): boolean {
  const buf = new Uint8Array(128);
  if ((c.fstatfs(fd, buf) as number) !== 0) return false;
  return MEMORY_FS.has(Number(new DataView(buf.buffer).getBigInt64(0, true)));
}
