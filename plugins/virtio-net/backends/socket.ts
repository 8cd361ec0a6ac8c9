import { lstatSync, unlinkSync } from 'node:fs';
import type { Disposable } from '../../../core/bus/bus.js';
import type { EventLoop } from '../../../core/events/event-loop.js';
import { c, errno, ERRNO, errnoName } from '../../../core/native/libc.js';
import { NO_OFFLOADS, type NetBackend } from './backend.js';
import { checkSingleQueue, NetBackendError } from './errors.js';
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

/** Frames a datagram backend holds while the peer's queue is full, before it drops. */
export const DGRAM_BACKLOG = 1024;

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
 * Unix datagram queues are short (net.unix.max_dgram_qlen, usually 10 datagrams): when the
 * peer's queue is full (EAGAIN/ENOBUFS) the frame waits in a backlog of up to DGRAM_BACKLOG
 * frames, sent in order as the peer drains its queue (retried from an event-loop timer), so bulk
 * TCP is not cut by drops; only past the backlog (or with no event loop) is a frame dropped.
 * The backend owns its socket and unlinks the path it bound when closed.
 */
export class DgramSocketBackend implements NetBackend {
  readonly queuePairs = 1;
  readonly vnetHeader = false;
  readonly offloads = NO_OFFLOADS;
  /** Frames dropped because the backlog was full. */
  droppedFull = 0;
  private closed = false;
  private backlog: Uint8Array[] = [];
  private retry: Disposable | undefined;
  private loop: EventLoop | undefined;

  private constructor(
    readonly kind: 'unix-dgram' | 'udp',
    readonly description: string,
    private readonly sock: number,
    private readonly peer: Uint8Array | undefined,
    private readonly boundPath?: string,
  ) {}

  /** Opens the endpoint; `loop` lets frames the peer cannot take yet wait in the backlog instead of being dropped. */
  static open(ep: DgramEndpoint, loop?: EventLoop): DgramSocketBackend {
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
    const be = new DgramSocketBackend(
      ep.kind === 'unix' ? 'unix-dgram' : 'udp',
      desc,
      fd,
      peer,
      ep.kind === 'unix' ? ep.path : undefined,
    );
    be.loop = loop;
    return be;
  }

  /** Two connected backends over socketpair(AF_UNIX, SOCK_DGRAM): a wire between two devices (tests). */
  static pair(loop?: EventLoop): [DgramSocketBackend, DgramSocketBackend] {
    const sv = new Int32Array(2);
    if (net.socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
      fail('socketpair', 'socket backend');
    const pair: [DgramSocketBackend, DgramSocketBackend] = [
      new DgramSocketBackend('unix-dgram', `socketpair fd ${sv[0]}`, sv[0], undefined),
      new DgramSocketBackend('unix-dgram', `socketpair fd ${sv[1]}`, sv[1], undefined),
    ];
    for (const b of pair) b.loop = loop;
    return pair;
  }

  fd(queue: number): number {
    return queue === 0 ? this.sock : -1;
  }

  send(queue: number, frame: Uint8Array): boolean {
    this.check(queue, 'Send');
    if (this.backlog.length) this.flushBacklog();
    const r = this.backlog.length ? 'full' : this.trySend(frame);
    if (r !== 'full') return r === 'sent';
    if (!this.loop || this.backlog.length >= DGRAM_BACKLOG) {
      this.droppedFull++;
      return false;
    }
    this.backlog.push(frame.slice()); // the caller's buffer is reused
    this.retry ??= this.loop.setTimer(1, () => this.flushBacklog(), { repeat: true });
    return true;
  }

  /** Sends what waits, in order, until the peer's queue is full again. */
  private flushBacklog(): void {
    while (this.backlog.length && !this.closed) {
      if (this.trySend(this.backlog[0]) === 'full') return;
      this.backlog.shift();
    }
    this.retry?.dispose();
    this.retry = undefined;
  }

  /** One datagram: sent, lost (no peer: like a wire) or full (the peer's queue; try again later). */
  private trySend(frame: Uint8Array): 'sent' | 'lost' | 'full' {
    const n = (
      this.peer
        ? net.sendto(this.sock, frame, frame.length, MSG_DONTWAIT, this.peer, this.peer.length)
        : net.send(this.sock, frame, frame.length, MSG_DONTWAIT)
    ) as number;
    if (n >= 0) return 'sent';
    const e = errno();
    if (e === ERRNO.EAGAIN || e === ERRNO.ENOBUFS) return 'full';
    // No peer listening (yet): the frame is lost, like on a wire.
    if (e === ERRNO.ECONNREFUSED || e === ERRNO.ENOENT) return 'lost';
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
    checkSingleQueue(this.closed, this.description, queue, kind);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.retry?.dispose();
    this.backlog = [];
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
