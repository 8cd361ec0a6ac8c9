import { lstatSync, unlinkSync } from 'node:fs';
import { c, errno, ERRNO, errnoName } from '../../../core/native/libc.js';
import { NO_OFFLOADS, type NetBackend } from './backend.js';
import { NetBackendError } from './errors.js';
import {
  AF_INET,
  AF_UNIX,
  MSG_DONTWAIT,
  MSG_TRUNC,
  net,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  SOCK_NONBLOCK,
  sockaddrIn,
  sockaddrUn,
} from './native.js';

/** Where a datagram backend sends and receives frames. */
export type DgramEndpoint =
  /** A Unix datagram socket bound at `path`, sending to the socket bound at `peer`. */
  | { kind: 'unix'; path: string; peer: string }
  /** UDP over IPv4: bound at local, sending to remote. */
  | { kind: 'udp'; local: { host: string; port: number }; remote: { host: string; port: number } };

const fail = (call: string, what: string, e = errno()): never => {
  throw new NetBackendError('Open', `${what}: ${call} failed: ${errnoName(e)} (${e})`, { call, errno: e });
};

/**
 * Ethernet frames as datagrams, one frame per datagram and no vnet header (QEMU's
 * `-netdev dgram` / `socket,udp=` wire format), over AF_UNIX SOCK_DGRAM or UDP.
 * Needs no privileges, so two VMs (or a VM and a test) can talk without a tap.
 * No offloads: the device offers none, so guests send complete frames with checksums.
 * Sending to a peer that is not there (yet) loses the frame, as a cable would.
 * Default unix datagram queues are short (net.unix.max_dgram_qlen, usually 10), so
 * bulk traffic sees drops; TCP recovers. The backend owns its socket and unlinks the
 * path it bound when closed.
 */
export class DgramSocketBackend implements NetBackend {
  readonly queuePairs = 1;
  readonly vnetHeader = false;
  readonly offloads = NO_OFFLOADS;
  private closed = false;

  private constructor(
    readonly kind: 'unix-dgram' | 'udp',
    readonly description: string,
    private readonly sock: number,
    private readonly peer: Uint8Array | undefined,
    private readonly boundPath?: string,
  ) {}

  static open(ep: DgramEndpoint): DgramSocketBackend {
    let local: Uint8Array;
    let peer: Uint8Array;
    try {
      local = ep.kind === 'unix' ? sockaddrUn(ep.path) : sockaddrIn(ep.local.host, ep.local.port);
      peer = ep.kind === 'unix' ? sockaddrUn(ep.peer) : sockaddrIn(ep.remote.host, ep.remote.port);
    } catch (err) {
      throw new NetBackendError('Open', `socket backend: ${(err as Error).message}`, {}, { cause: err });
    }
    if (ep.kind === 'unix') removeStaleSocket(ep.path);
    // Owned by the backend from here on; closed below on error or in close().
    const fd = net.socket(
      ep.kind === 'unix' ? AF_UNIX : AF_INET,
      SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
      0,
    ) as number;
    if (fd < 0) fail('socket', 'socket backend');
    const where = ep.kind === 'unix' ? `unix:${ep.path}` : `udp:${ep.local.host}:${ep.local.port}`;
    if (net.bind(fd, local, local.length) < 0) {
      const e = errno();
      c.close(fd);
      fail('bind', `socket backend ${where}`, e);
    }
    const desc =
      ep.kind === 'unix'
        ? `unix-dgram ${ep.path} -> ${ep.peer}`
        : `udp ${ep.local.host}:${ep.local.port} -> ${ep.remote.host}:${ep.remote.port}`;
    return new DgramSocketBackend(
      ep.kind === 'unix' ? 'unix-dgram' : 'udp',
      desc,
      fd,
      peer,
      ep.kind === 'unix' ? ep.path : undefined,
    );
  }

  /** Two connected backends over socketpair(AF_UNIX, SOCK_DGRAM): a wire between two devices (tests). */
  static pair(): [DgramSocketBackend, DgramSocketBackend] {
    const sv = new Int32Array(2);
    if (net.socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
      fail('socketpair', 'socket backend');
    return [
      new DgramSocketBackend('unix-dgram', `socketpair fd ${sv[0]}`, sv[0], undefined),
      new DgramSocketBackend('unix-dgram', `socketpair fd ${sv[1]}`, sv[1], undefined),
    ];
  }

  fd(queue: number): number {
    return queue === 0 ? this.sock : -1;
  }

  send(queue: number, frame: Uint8Array): boolean {
    this.check(queue, 'Send');
    const n = (
      this.peer
        ? net.sendto(this.sock, frame, frame.length, MSG_DONTWAIT, this.peer, this.peer.length)
        : net.send(this.sock, frame, frame.length, MSG_DONTWAIT)
    ) as number;
    if (n >= 0) return true;
    const e = errno();
    // A full queue, or no peer listening (yet): the frame is lost, like on a wire.
    if (e === ERRNO.EAGAIN || e === ERRNO.ENOBUFS || e === ERRNO.ECONNREFUSED || e === ERRNO.ENOENT) return false;
    throw new NetBackendError('Send', `${this.description}: send failed: ${errnoName(e)} (${e})`, { errno: e });
  }

  recv(queue: number, buf: Uint8Array): number {
    this.check(queue, 'Recv');
    // MSG_TRUNC: the return value is the datagram's real length, so oversized frames are seen.
    const n = net.recv(this.sock, buf, buf.length, MSG_DONTWAIT | MSG_TRUNC) as number;
    if (n >= 0) return n;
    const e = errno();
    if (e === ERRNO.EAGAIN || e === ERRNO.EINTR) return -1;
    // UDP reports an earlier ICMP port-unreachable on the next call: not a receive failure.
    if (e === ERRNO.ECONNREFUSED) return -1;
    throw new NetBackendError('Recv', `${this.description}: recv failed: ${errnoName(e)} (${e})`, { errno: e });
  }

  setGuestOffloads(): void {
    /* no header on the wire: nothing to offload */
  }

  private check(queue: number, kind: 'Send' | 'Recv'): void {
    if (this.closed) throw new NetBackendError('Closed', `${this.description} is closed`, {});
    if (queue !== 0)
      throw new NetBackendError(kind, `${this.description} has one queue pair, not ${queue + 1}`, { queue });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    c.close(this.sock);
    if (this.boundPath) removeStaleSocket(this.boundPath);
  }
}

/** Removes a leftover socket file at `path` (never a regular file or anything else). */
function removeStaleSocket(path: string): void {
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch {
    /* absent */
  }
}
