import * as fs from 'node:fs';
import { c, ERRNO, errnoName, koffi } from '../native/libc.js';
import { ImageFileError } from './regular-file.js';
import { describeLockHolders } from './lock-holders.js';

/**
 * How an image is opened, as far as other processes are concerned:
 * - `read-write`: we read, write and may grow it; nobody else may write or resize it;
 * - `read-only`: we read it (a backing file, `vmm image info/check`); nobody may write or resize it;
 * - `force-share`: read-only inspection that shares everything (`--force-share`, qemu-img's -U);
 * - `none`: no lock at all (a 4 KiB format probe that closes at once).
 */
export type ImageAccess = 'read-write' | 'read-only' | 'force-share' | 'none';

/**
 * QEMU's permission bits (include/block/block-common.h), bit i of a permission mask, and the
 * bytes block/file-posix.c locks for them: byte PERM_BASE + i while the open holds permission
 * i, byte SHARED_BASE + i while it refuses to share permission i. All are shared (read) OFD
 * locks on one byte; a conflict is found by testing for a write lock on the other side's byte.
 * Taking the same bytes makes our VMM and QEMU/qemu-img/qemu-io exclude each other.
 */
export const QEMU_LOCK = { PERM_BASE: 100, SHARED_BASE: 200 } as const;
const PERM = { consistentRead: 0, write: 1, writeUnchanged: 2, resize: 3 } as const;
const PERM_NAMES = ['consistent read', 'write', 'write unchanged', 'resize'];

/** Held permissions and permissions refused to others, per access mode (bit indices). */
const MODES: Record<Exclude<ImageAccess, 'none'>, { perms: number[]; unshared: number[] }> = {
  'read-write': { perms: [PERM.consistentRead, PERM.write, PERM.resize], unshared: [PERM.write, PERM.resize] },
  'read-only': { perms: [PERM.consistentRead], unshared: [PERM.write, PERM.resize] },
  'force-share': { perms: [PERM.consistentRead], unshared: [] },
};

const F_OFD_GETLK = 36;
const F_OFD_SETLK = 37;
const F_RDLCK = 0;
const F_WRLCK = 1;
const F_UNLCK = 2;
/**
 * struct flock on the 64-bit Linux ABIs Node runs on (process.arch x64, arm64): l_type i16 @0, l_whence i16 @2, l_start
 * i64 @8, l_len i64 @16, l_pid i32 @24.
 */
const FLOCK_SIZE = 32;

/** Errnos that mean "this filesystem (or kernel) cannot do OFD locks": warn once and go on, as QEMU does. */
const UNSUPPORTED = new Set(
  [ERRNO.EOPNOTSUPP, ERRNO.ENOTSUP, ERRNO.ENOLCK, ERRNO.ENOSYS, ERRNO.EINVAL].filter((e) => e !== undefined),
);

let warn: (message: string) => void = (m) => {
  process.stderr.write(`vmm: warning: ${m}\n`);
};
let warnedUnsupported = false;

/** Where the one-time "locks unsupported" warning goes (default: one line on stderr). Returns the previous sink. */
export function setImageLockWarning(sink: (message: string) => void): (message: string) => void {
  const prev = warn;
  warn = sink;
  warnedUnsupported = false;
  return prev;
}

function flock(type: number, start: number): Buffer {
  const b = Buffer.alloc(FLOCK_SIZE);
  b.writeInt16LE(type, 0);
  b.writeInt16LE(0, 2); // SEEK_SET
  b.writeBigInt64LE(BigInt(start), 8);
  b.writeBigInt64LE(1n, 16);
  return b;
}

/** fcntl(F_OFD_*) on one byte; returns 0 or the errno. SAFETY: `b` outlives the call; fd owned by the caller. */
function ofd(fd: number, cmd: number, b: Buffer): number {
  return (c.fcntlPtr(fd, cmd, b) as number) === 0 ? 0 : koffi.errno();
}

/**
 * Takes QEMU's lock bytes for `access` on an open image `fd`, then checks that no other open
 * file description (this process or another: QEMU, qemu-img, another vmm) holds a conflicting
 * one. The locks live as long as the fd: closing it releases them. On a conflict, throws an
 * ImageFileError ('Locked') naming the file and, when /proc tells, the processes holding it;
 * the caller closes the fd. A filesystem without OFD locks gives one warning and no locking.
 */
export function lockImage(fd: number, path: string, access: ImageAccess): void {
  if (access === 'none') return;
  const mode = MODES[access];
  const bytes = [
    ...mode.perms.map((p) => QEMU_LOCK.PERM_BASE + p),
    ...mode.unshared.map((p) => QEMU_LOCK.SHARED_BASE + p),
  ];
  for (const byte of bytes) {
    const e = ofd(fd, F_OFD_SETLK, flock(F_RDLCK, byte));
    if (e === 0) continue;
    if (UNSUPPORTED.has(e)) {
      if (!warnedUnsupported)
        warn(
          `${path}: the filesystem does not support OFD locks (${errnoName(e)}); images on it are not locked against other processes`,
        );
      warnedUnsupported = true;
      return;
    }
    if (e === ERRNO.EAGAIN || e === ERRNO.EACCES) throw locked(fd, path, access, byte);
    throw new ImageFileError('Locked', `cannot lock ${path}: fcntl(F_OFD_SETLK) failed: ${errnoName(e)}`, {
      path,
      errno: e,
    });
  }
  // Someone refusing to share what we hold, or holding what we refuse to share.
  const tests = [
    ...mode.perms.map((p) => QEMU_LOCK.SHARED_BASE + p),
    ...mode.unshared.map((p) => QEMU_LOCK.PERM_BASE + p),
  ];
  for (const byte of tests) {
    const b = flock(F_WRLCK, byte);
    const e = ofd(fd, F_OFD_GETLK, b);
    if (e !== 0) {
      if (UNSUPPORTED.has(e)) return;
      throw new ImageFileError(
        'Locked',
        `cannot test the locks of ${path}: fcntl(F_OFD_GETLK) failed: ${errnoName(e)}`,
        { path, errno: e },
      );
    }
    if (b.readInt16LE(0) !== F_UNLCK) throw locked(fd, path, access, byte, b.readInt32LE(24));
  }
}

function locked(fd: number, path: string, access: ImageAccess, byte: number, pid = -1): ImageFileError {
  const shared = byte >= QEMU_LOCK.SHARED_BASE;
  const perm = PERM_NAMES[byte - (shared ? QEMU_LOCK.SHARED_BASE : QEMU_LOCK.PERM_BASE)] ?? `byte ${byte}`;
  const what = shared ? `does not share the "${perm}" permission` : `holds the "${perm}" permission`;
  const st = fs.fstatSync(fd);
  // OFD locks carry no pid (F_OFD_GETLK says -1): look for the holders in /proc instead.
  const holders = pid > 0 ? `pid ${pid}` : describeLockHolders(st.dev, st.ino, fd);
  const hint =
    access === 'read-write'
      ? ''
      : '; for a read-only look use --force-share (-U), knowing the image may change under you';
  return new ImageFileError(
    'Locked',
    `${path} is in use: another open of it ${what} (lock byte ${byte}; held by ${holders}); cannot open it ${access}${hint}`,
    { path, byte, access },
  );
}
