/**
 * The socket and tun calls the network backends make through koffi (libc.so.6).
 * SAFETY notes for callers:
 *  - every fd returned here belongs to the caller, who closes it with c.close;
 *  - buffers are passed as typed arrays (koffi passes their address for the call only;
 *    nothing keeps a pointer after the call returns);
 *  - `ifreq` is struct ifreq: 40 bytes, char ifr_name[16] then short ifr_flags at 16
 *    (checked with gcc against <linux/if.h> on x86-64);
 *  - socket addresses are built byte by byte (sockaddr_un 110 bytes, sockaddr_in 16).
 */
import { koffi } from '../../../core/native/libc.js';

const lib = koffi.load('libc.so.6');

/**
 * The socket and tun calls the backends use (koffi bindings; C return values: -1 and errno on failure). The caller owns
 * every fd; buffers are passed by address for the call only.
 */
export const net = {
  socket: lib.func('int socket(int domain, int type, int protocol)'),
  socketpair: lib.func('int socketpair(int domain, int type, int protocol, _Out_ int *sv)'),
  bind: lib.func('int bind(int fd, const uint8_t *addr, uint32_t len)'),
  connect: lib.func('int connect(int fd, const uint8_t *addr, uint32_t len)'),
  send: lib.func('intptr_t send(int fd, const uint8_t *buf, uintptr_t len, int flags)'),
  sendto: lib.func(
    'intptr_t sendto(int fd, const uint8_t *buf, uintptr_t len, int flags, const uint8_t *addr, uint32_t alen)',
  ),
  recv: lib.func('intptr_t recv(int fd, _Out_ uint8_t *buf, uintptr_t len, int flags)'),
  /** dup2(old, new): puts `old`'s file at fd number `new` (closing what was there). */
  dup2: lib.func('int dup2(int oldfd, int newfd)'),
  /** writev(fd, struct iovec *iov, iovcnt): the iovec array is passed as bytes (see HostIovec). */
  writev: lib.func('intptr_t writev(int fd, const uint8_t *iov, int iovcnt)'),
  /** ioctl(fd, req, int *) for TUNSETVNETHDRSZ / TUNGETVNETHDRSZ / TUNGETFEATURES. */
  ioctlIntPtr: lib.func('int ioctl(int fd, unsigned long req, _Inout_ int *arg)'),
  /** ioctl(fd, req, struct ifreq *) for TUNSETIFF / TUNGETIFF / TUNSETQUEUE. */
  ioctlIfreq: lib.func('int ioctl(int fd, unsigned long req, _Inout_ uint8_t *ifr)'),
};

/** Socket address families. */
export const AF_UNIX = 1,
  AF_INET = 2;
/** Socket type and the flags or-ed into it. */
export const SOCK_DGRAM = 2,
  SOCK_NONBLOCK = 0o4000,
  SOCK_CLOEXEC = 0o2000000;
/** recv/send flags: report a datagram's real length; do not block. */
export const MSG_TRUNC = 0x20,
  MSG_DONTWAIT = 0x40;
/** fcntl commands to read and set a file's status flags (O_NONBLOCK). */
export const F_GETFL = 3,
  F_SETFL = 4;

/** <linux/if_tun.h> (values checked with gcc). */
export const Tun = {
  TUNSETIFF: 0x400454ca,
  TUNGETIFF: 0x800454d2,
  TUNSETOFFLOAD: 0x400454d0,
  TUNSETVNETHDRSZ: 0x400454d8,
  TUNGETVNETHDRSZ: 0x800454d7,
  TUNSETQUEUE: 0x400454d9,
  TUNGETFEATURES: 0x800454cf,
  IFF_TUN: 0x0001,
  IFF_TAP: 0x0002,
  IFF_MULTI_QUEUE: 0x0100,
  IFF_ATTACH_QUEUE: 0x0200,
  IFF_DETACH_QUEUE: 0x0400,
  IFF_NO_PI: 0x1000,
  IFF_VNET_HDR: 0x4000,
  TUN_F_CSUM: 0x01,
  TUN_F_TSO4: 0x02,
  TUN_F_TSO6: 0x04,
  TUN_F_TSO_ECN: 0x08,
  TUN_F_UFO: 0x10,
} as const;

/** Bytes of an interface name in struct ifreq, the terminating NUL included. */
export const IFNAMSIZ = 16;
/** sizeof(struct ifreq) on x86-64. */
export const IFREQ_SIZE = 40;

/** struct ifreq with a name and flags. */
export function ifreq(name: string, flags: number): Uint8Array {
  const b = new Uint8Array(IFREQ_SIZE);
  const n = Buffer.from(name, 'latin1');
  b.set(n.subarray(0, IFNAMSIZ - 1));
  new DataView(b.buffer).setUint16(16, flags, true);
  return b;
}

/** The interface name in a struct ifreq (up to its NUL). */
export function ifreqName(b: Uint8Array): string {
  const end = b.indexOf(0);
  return Buffer.from(b.subarray(0, end < 0 || end > IFNAMSIZ ? IFNAMSIZ : end)).toString('latin1');
}

/** The ifr_flags of a struct ifreq. */
export const ifreqFlags = (b: Uint8Array): number => new DataView(b.buffer, b.byteOffset).getUint16(16, true);

/** struct sockaddr_un for a filesystem path (at most 107 bytes). */
export function sockaddrUn(path: string): Uint8Array {
  const p = Buffer.from(path, 'utf8');
  if (p.length === 0 || p.length > 107) throw new RangeError(`a unix socket path is 1..107 bytes, got ${p.length}`);
  const b = new Uint8Array(110);
  new DataView(b.buffer).setUint16(0, AF_UNIX, true);
  b.set(p, 2);
  return b.subarray(0, 2 + p.length + 1);
}

/** struct sockaddr_in for dotted-quad IPv4 and a port. */
export function sockaddrIn(host: string, port: number): Uint8Array {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host);
  if (!m || m.slice(1).some((x) => Number(x) > 255)) throw new RangeError(`'${host}' is not an IPv4 address`);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`port ${port} is not 0..65535`);
  const b = new Uint8Array(16);
  const dv = new DataView(b.buffer);
  dv.setUint16(0, AF_INET, true);
  dv.setUint16(2, port, false);
  m.slice(1).forEach((x, i) => {
    b[4 + i] = Number(x);
  });
  return b;
}
