import koffi from 'koffi';
import { VmmError } from '../errors.js';

/**
 * libc through koffi: the only place the framework declares libc prototypes.
 * SAFETY notes for callers:
 *  - fds returned here are owned by the caller, who must close() them;
 *  - `mmap` returns a host address (bigint); `viewOf(addr, len)` gives a zero-copy
 *    ArrayBuffer over it that is valid only until the matching `munmap`;
 *  - `ioctl` is variadic in C: we declare fixed-arity prototypes, one taking a
 *    pointer (Buffer / typed array, passed by address) and one taking an integer.
 */
export class NativeError extends VmmError<'Syscall'> {
  constructor(
    readonly call: string,
    readonly errno: number,
    detail = '',
  ) {
    super('Syscall', `${call} failed: ${errnoName(errno)} (${errno})${detail ? `: ${detail}` : ''}`, { call, errno });
  }
}

const lib = koffi.load('libc.so.6');

const errnoNames: Record<number, string> = Object.fromEntries(Object.entries(koffi.os.errno).map(([k, v]) => [v, k]));
/** The symbolic name of an errno value ('ENOENT'), or 'errno N' for one koffi does not know. */
export const errnoName = (e: number): string => errnoNames[e] ?? `errno ${e}`;
/** errno values by name (ERRNO.EAGAIN), as koffi reports them for this OS. */
export const ERRNO = koffi.os.errno as Record<string, number>;

/**
 * The libc calls (koffi bindings). Return values are C's: -1 with errno set on failure (check() turns that into a
 * NativeError); the caller owns every fd these return. The *Addr variants take raw host addresses (bigint), for guest
 * memory views and mmap results; the others take Buffers/typed arrays passed by address for the call only.
 */
export const c = {
  open: lib.func('int open(const char *path, int flags, uint32_t mode)'),
  close: lib.func('int close(int fd)'),
  /** SAFETY: writes sizeof(struct statfs) (120 bytes on 64-bit Linux) into `buf`, which must be at least that. */
  fstatfs: lib.func('int fstatfs(int fd, _Out_ uint8_t *buf)'),
  read: lib.func('intptr_t read(int fd, _Out_ uint8_t *buf, uintptr_t count)'),
  write: lib.func('intptr_t write(int fd, const uint8_t *buf, uintptr_t count)'),
  /** pread/pwrite with raw host addresses (guest memory views). */
  preadAddr: lib.func('intptr_t pread64(int fd, uintptr_t buf, uintptr_t count, int64_t offset)'),
  pwriteAddr: lib.func('intptr_t pwrite64(int fd, uintptr_t buf, uintptr_t count, int64_t offset)'),
  readAddr: lib.func('intptr_t read(int fd, uintptr_t buf, uintptr_t count)'),
  writeAddr: lib.func('intptr_t write(int fd, uintptr_t buf, uintptr_t count)'),
  ioctlPtr: lib.func('int ioctl(int fd, unsigned long req, void *arg)'),
  ioctlInt: lib.func('int ioctl(int fd, unsigned long req, unsigned long arg)'),
  ioctlAddr: lib.func('int ioctl(int fd, unsigned long req, uintptr_t arg)'),
  mmap: lib.func('uintptr_t mmap(uintptr_t addr, uintptr_t length, int prot, int flags, int fd, int64_t offset)'),
  munmap: lib.func('int munmap(uintptr_t addr, uintptr_t length)'),
  madvise: lib.func('int madvise(uintptr_t addr, uintptr_t length, int advice)'),
  eventfd: lib.func('int eventfd(unsigned int initval, int flags)'),
  memfdCreate: lib.func('int memfd_create(const char *name, unsigned int flags)'),
  ftruncate: lib.func('int ftruncate64(int fd, int64_t length)'),
  fcntl: lib.func('int fcntl(int fd, int cmd, int arg)'),
  /** fcntl taking a pointer (struct flock for the F_OFD_* lock commands). */
  fcntlPtr: lib.func('int fcntl(int fd, int cmd, void *arg)'),
  lseek: lib.func('int64_t lseek64(int fd, int64_t offset, int whence)'),
  fsync: lib.func('int fsync(int fd)'),
  fdatasync: lib.func('int fdatasync(int fd)'),
  fallocate: lib.func('int fallocate64(int fd, int mode, int64_t offset, int64_t len)'),
  getpid: lib.func('int getpid()'),
  gettid: lib.func('long syscall(long nr)'),
  tgkill: lib.func('int tgkill(int tgid, int tid, int sig)'),
};

/**
 * Picks the value of a host-ABI-dependent constant for this process's ABI (Node's process.arch). The VMM runs on
 * Linux x64 and arm64 hosts; on any other ABI the module refuses to load with a clear error rather than passing a
 * wrong flag or system call number to the kernel.
 */
function byHostAbi(values: { readonly x64: number; readonly arm64: number }, name: string): number {
  const arch = process.arch;
  if (arch === 'x64' || arch === 'arm64') return values[arch];
  throw new Error(`core/native: no ${name} for host ABI '${arch}' (supported: x64, arm64)`);
}

/** mmap's failure value ((void *)-1) as the unsigned bigint our prototype returns. */
export const MAP_FAILED = 0xffffffffffffffffn;
/** mmap/mprotect protection bits (<sys/mman.h>). */
export const PROT_READ = 1,
  PROT_WRITE = 2,
  PROT_EXEC = 4;
/** mmap flags (<sys/mman.h>; the same on both host ABIs we run on, Node's process.arch 'x64' and 'arm64'). */
export const MAP_SHARED = 0x01,
  MAP_PRIVATE = 0x02,
  MAP_ANONYMOUS = 0x20,
  MAP_NORESERVE = 0x4000,
  MAP_HUGETLB = 0x40000;
/** open(2) flags (<fcntl.h>, octal as in the C headers; O_DIRECT is the one that differs between host ABIs). */
export const O_RDONLY = 0,
  O_WRONLY = 1,
  O_RDWR = 2,
  O_CREAT = 0o100,
  O_EXCL = 0o200,
  O_TRUNC = 0o1000,
  O_NONBLOCK = 0o4000,
  O_CLOEXEC = 0o2000000,
  O_DIRECT = byHostAbi({ x64: 0o40000, arm64: 0o200000 }, 'O_DIRECT');
/** eventfd(2) flags. */
export const EFD_SEMAPHORE = 1,
  EFD_NONBLOCK = 0o4000,
  EFD_CLOEXEC = 0o2000000;
/** memfd_create(2) flag: close the fd on exec. */
export const MFD_CLOEXEC = 1;
/** fallocate(2) modes: keep the file size, punch a hole (with KEEP_SIZE), zero a range. */
export const FALLOC_FL_KEEP_SIZE = 1,
  FALLOC_FL_PUNCH_HOLE = 2,
  FALLOC_FL_ZERO_RANGE = 0x10;
/** The gettid system call number of the host ABI (called through c.gettid, i.e. syscall(2)). */
export const SYS_gettid = byHostAbi({ x64: 186, arm64: 178 }, 'SYS_gettid');

/** errno as the last koffi call on this thread left it; read it right after the failing call. */
export const errno = (): number => koffi.errno();

/** Throws NativeError when a call returned -1 (or MAP_FAILED). */
export function check<T extends number | bigint>(call: string, r: T, detail?: string): T {
  if (r === -1 || r === -1n || BigInt(r) === MAP_FAILED) throw new NativeError(call, koffi.errno(), detail);
  return r;
}

/** Zero-copy view over host memory at `addr`. Valid only while the mapping lives. */
export function viewOf(addr: bigint, length: number): Uint8Array {
  return new Uint8Array(koffi.view(addr, length));
}

/** Host address of a Buffer / typed array's first byte (stable while the object is alive and not moved). */
export function addressOf(buf: ArrayBufferView): bigint {
  return koffi.address(buf) as bigint;
}

export { koffi };

/**
 * Process-hardening calls (core/security): prctl and the seccomp(2) / landlock system calls, which
 * glibc does not wrap, through syscall(2) with fixed arities (integers and one pointer).
 * SAFETY: the pointer arguments are Buffers the caller keeps alive for the call; nothing is retained.
 */
export const hardening = {
  prctl: lib.func('int prctl(int option, unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5)'),
  /**
   * syscall(nr, a, b, ptr) for seccomp(op, flags, args); syscallPtrIntInt puts the pointer first, for
   * landlock_create_ruleset(attr, size, flags).
   */
  syscallIntIntPtr: lib.func('long syscall(long nr, unsigned long a, unsigned long b, void *p)'),
  syscallPtrIntInt: lib.func('long syscall(long nr, void *p, unsigned long a, unsigned long b)'),
  syscallIntIntPtrInt: lib.func('long syscall(long nr, unsigned long a, unsigned long b, void *p, unsigned long c)'),
  syscallIntInt: lib.func('long syscall(long nr, unsigned long a, unsigned long b)'),
};
