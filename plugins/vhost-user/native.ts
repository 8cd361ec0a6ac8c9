/**
 * Unix stream sockets that carry file descriptors (SCM_RIGHTS), through koffi (libc.so.6).
 *
 * Why koffi: vhost-user hands the back end fds (guest RAM memfds, kick/call eventfds) as ancillary data.
 * Node's `net` module cannot send or receive fds over a Unix socket (only child_process IPC can, and only
 * its own handles), and no npm library for it is both maintained and free of a native build step
 * (`unix-dgram`, `usocket` and friends compile C++ addons per Node version). koffi is already how tsvmm
 * reaches libc, so sendmsg/recvmsg are a few prototypes here.
 *
 * SAFETY notes for callers:
 *  - every fd returned here (sockets, received fds) belongs to the caller, who closes it with c.close;
 *  - struct msghdr / iovec / cmsghdr are built in Buffers whose addresses are written into each other;
 *    all of them are locals kept alive for the duration of the call; nothing keeps a pointer afterwards;
 *  - layouts are those of the LP64 Linux ABIs we run on (x64, arm64): msghdr 56 bytes (name 0, namelen 8,
 *    iov 16, iovlen 24, control 32, controllen 40, flags 48), iovec 16, cmsghdr 16 + data.
 */
import { addressOf, c, errno, ERRNO, errnoName, koffi, NativeError } from '../../core/native/libc.js';

const lib = koffi.load('libc.so.6');

const sys = {
  socket: lib.func('int socket(int domain, int type, int protocol)'),
  bind: lib.func('int bind(int fd, const uint8_t *addr, uint32_t len)'),
  listen: lib.func('int listen(int fd, int backlog)'),
  accept4: lib.func('int accept4(int fd, void *addr, void *len, int flags)'),
  connect: lib.func('int connect(int fd, const uint8_t *addr, uint32_t len)'),
  sendmsg: lib.func('intptr_t sendmsg(int fd, const uint8_t *msg, int flags)'),
  recvmsg: lib.func('intptr_t recvmsg(int fd, uint8_t *msg, int flags)'),
};

const AF_UNIX = 1;
const SOCK_STREAM = 1;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const MSG_DONTWAIT = 0x40;
const MSG_NOSIGNAL = 0x4000;
const MSG_CTRUNC = 0x8;
const MSG_CMSG_CLOEXEC = 0x40000000;
const SOL_SOCKET = 1;
const SCM_RIGHTS = 1;
/** Most fds one message carries (vhost-user: 8 memory regions, VHOST_MEMORY_BASELINE_NREGIONS). */
export const MAX_FDS = 8;

/** struct sockaddr_un for `path` (at most 107 bytes). */
function sockaddrUn(path: string): Uint8Array {
  const p = Buffer.from(path);
  if (p.length > 107) throw new NativeError('connect', ERRNO.ENAMETOOLONG, `socket path too long: ${path}`);
  const a = new Uint8Array(110);
  new DataView(a.buffer).setUint16(0, AF_UNIX, true);
  a.set(p, 2);
  return a;
}

function streamSocket(): number {
  const fd = sys.socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0) as number;
  if (fd < 0) throw new NativeError('socket', errno());
  return fd;
}

/** Connects a non-blocking Unix stream socket to `path`; throws NativeError (ENOENT, ECONNREFUSED, ...) on failure. */
export function connectUnix(path: string): number {
  const fd = streamSocket();
  const addr = sockaddrUn(path);
  if (sys.connect(fd, addr, addr.length) < 0) {
    const e = errno();
    c.close(fd);
    throw new NativeError('connect', e, path);
  }
  return fd;
}

/** A non-blocking listening Unix stream socket bound at `path` (test back ends). */
export function listenUnix(path: string): number {
  const fd = streamSocket();
  const addr = sockaddrUn(path);
  if (sys.bind(fd, addr, addr.length) < 0 || sys.listen(fd, 4) < 0) {
    const e = errno();
    c.close(fd);
    throw new NativeError('bind/listen', e, path);
  }
  return fd;
}

/** Accepts one connection (non-blocking, close-on-exec); -1 when none is waiting. */
export function acceptUnix(fd: number): number {
  const r = sys.accept4(fd, null, null, SOCK_NONBLOCK | SOCK_CLOEXEC) as number;
  if (r >= 0) return r;
  const e = errno();
  if (e === ERRNO.EAGAIN || e === ERRNO.EINTR) return -1;
  throw new NativeError('accept4', e);
}

function msghdr(iov: Uint8Array, control: Uint8Array | undefined): Uint8Array {
  const m = new Uint8Array(56);
  const dv = new DataView(m.buffer);
  dv.setBigUint64(16, addressOf(iov), true);
  dv.setBigUint64(24, 1n, true);
  if (control) {
    dv.setBigUint64(32, addressOf(control), true);
    dv.setBigUint64(40, BigInt(control.length), true);
  }
  return m;
}

function iovec(data: Uint8Array): Uint8Array {
  const v = new Uint8Array(16);
  const dv = new DataView(v.buffer);
  dv.setBigUint64(0, data.length ? addressOf(data) : 0n, true);
  dv.setBigUint64(8, BigInt(data.length), true);
  return v;
}

/**
 * Sends `data` (and `fds` as SCM_RIGHTS on its first byte) without blocking. Returns the bytes sent
 * (the fds went with the first byte when > 0); -1 when the socket is full (EAGAIN). Throws NativeError on
 * any other failure (EPIPE, ECONNRESET: the peer is gone).
 */
export function sendWithFds(fd: number, data: Uint8Array, fds: readonly number[] = []): number {
  if (fds.length > MAX_FDS) throw new NativeError('sendmsg', ERRNO.EINVAL, `${fds.length} fds (max ${MAX_FDS})`);
  const body = data.length ? data : new Uint8Array(1);
  let control: Uint8Array | undefined;
  if (fds.length) {
    const len = 16 + 4 * fds.length;
    control = new Uint8Array((len + 7) & ~7);
    const dv = new DataView(control.buffer);
    dv.setBigUint64(0, BigInt(len), true);
    dv.setInt32(8, SOL_SOCKET, true);
    dv.setInt32(12, SCM_RIGHTS, true);
    fds.forEach((f, i) => dv.setInt32(16 + 4 * i, f, true));
  }
  const iov = iovec(body);
  const msg = msghdr(iov, control);
  for (;;) {
    const n = Number(sys.sendmsg(fd, msg, MSG_DONTWAIT | MSG_NOSIGNAL));
    if (n >= 0) return n;
    const e = errno();
    if (e === ERRNO.EINTR) continue;
    if (e === ERRNO.EAGAIN) return -1;
    throw new NativeError('sendmsg', e);
  }
  // keep `body`, `iov` and `control` alive until here (referenced by msg)
}

/** What one recvmsg returned: bytes (0 = the peer closed) and the fds that came with them. */
export interface Received {
  readonly length: number;
  readonly fds: number[];
}

/**
 * Receives into `buf` without blocking; -1 length when nothing is waiting. Received fds are
 * close-on-exec and owned by the caller. Throws NativeError on failure (ECONNRESET: the peer is gone).
 */
export function recvWithFds(fd: number, buf: Uint8Array): Received {
  const control = new Uint8Array(16 + 4 * MAX_FDS);
  const iov = iovec(buf);
  const msg = msghdr(iov, control);
  let n: number;
  for (;;) {
    n = Number(sys.recvmsg(fd, msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC));
    if (n >= 0) break;
    const e = errno();
    if (e === ERRNO.EINTR) continue;
    if (e === ERRNO.EAGAIN) return { length: -1, fds: [] };
    throw new NativeError('recvmsg', e);
  }
  const dv = new DataView(msg.buffer);
  const controlLen = Number(dv.getBigUint64(40, true));
  const fds: number[] = [];
  const cv = new DataView(control.buffer);
  if (controlLen >= 16 && cv.getInt32(8, true) === SOL_SOCKET && cv.getInt32(12, true) === SCM_RIGHTS) {
    const len = Number(cv.getBigUint64(0, true));
    for (let off = 16; off + 4 <= Math.min(len, controlLen); off += 4) fds.push(cv.getInt32(off, true));
  }
  if (dv.getInt32(48, true) & MSG_CTRUNC) {
    for (const f of fds) c.close(f);
    throw new NativeError('recvmsg', ERRNO.EMSGSIZE, 'more fds than one message may carry');
  }
  return { length: n, fds };
}

/** The errno of a NativeError as a name, for log lines. */
export const errName = (err: unknown): string =>
  err instanceof NativeError ? errnoName(err.errno) : ((err as Error)?.message ?? String(err));
