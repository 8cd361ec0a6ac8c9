import type { Disposable } from '../../../core/bus/bus.js';
import type { EventLoop } from '../../../core/events/event-loop.js';
import { c, errno, ERRNO, errnoName } from '../../../core/native/libc.js';
import { NO_OFFLOADS, type NetBackend } from './backend.js';
import { checkSingleQueue, NetBackendError } from './errors.js';
import { AF_UNIX, MSG_DONTWAIT, net, SOCK_CLOEXEC, SOCK_NONBLOCK, sockaddrUn } from './native.js';

const SOCK_STREAM = 1;
const MSG_NOSIGNAL = 0x4000;
const F_DUPFD_CLOEXEC = 1030;
/** Largest frame the stream carries (passt's and QEMU's limit: 64 KiB plus the Ethernet header). */
export const STREAM_MAX_FRAME = 65535 + 14;
/** Bytes the backend holds for the socket before it drops frames (the peer is not reading). */
export const STREAM_MAX_PENDING = 1 << 20;

/**
 * Ethernet frames over a Unix stream socket, each preceded by its length as a 4-byte big-endian number:
 * QEMU's `-netdev stream` wire format, which `passt` (user-mode networking: the guest reaches the host's
 * network with no root and no tap) and `socat` speak. No vnet header, no offloads.
 *
 * Sending never blocks: what the socket does not take at once (a partial frame included) waits in the
 * backend, written when the socket is writable again; past STREAM_MAX_PENDING bytes waiting, new frames are
 * dropped like a full NIC queue. Writability is watched on a duplicate of the socket's fd: the device watches
 * the socket's own fd for reading, and libuv allows one watch per fd number (a second one fails EEXIST).
 * Receiving reassembles frames across reads. When the peer closes the stream, the backend stops (frames sent
 * are dropped, nothing is received) and says so once in `onClosed`.
 */
export class StreamSocketBackend implements NetBackend {
  readonly kind = 'stream';
  readonly queuePairs = 1;
  readonly vnetHeader = false;
  readonly offloads = NO_OFFLOADS;
  /** Frames dropped because too much was waiting for the socket. */
  droppedFull = 0;
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private writable: Disposable | undefined;
  /** A duplicate of the socket, watched for writability while frames wait; -1 when none. */
  private writeFd = -1;
  private readonly header = new Uint8Array(4);
  private headerHave = 0;
  private frame: Uint8Array | undefined;
  private frameHave = 0;
  private down = false;
  private closed = false;

  private constructor(
    readonly description: string,
    private readonly sock: number,
    private readonly loop: EventLoop | undefined,
    private readonly onClosed?: (why: string) => void,
  ) {}

  /** Connects to the stream socket at `path` (e.g. passt's `--socket`). Throws NetBackendError('Open'). */
  static connect(path: string, loop?: EventLoop, onClosed?: (why: string) => void): StreamSocketBackend {
    let addr: Uint8Array;
    try {
      addr = sockaddrUn(path);
    } catch (err) {
      throw new NetBackendError('Open', `stream backend: ${(err as Error).message}`, {}, { cause: err });
    }
    const fd = net.socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0) as number;
    if (fd < 0) throw openError('socket', path, errno());
    if (net.connect(fd, addr, addr.length) < 0) {
      const e = errno();
      c.close(fd);
      throw openError('connect', path, e);
    }
    return new StreamSocketBackend(`stream ${path}`, fd, loop, onClosed);
  }

  /** A backend over an fd that is already a connected stream socket (tests: one end of a socketpair). */
  static fromFd(fd: number, loop?: EventLoop, onClosed?: (why: string) => void): StreamSocketBackend {
    return new StreamSocketBackend(`stream fd ${fd}`, fd, loop, onClosed);
  }

  fd(queue: number): number {
    return queue === 0 ? this.sock : -1;
  }

  send(queue: number, frame: Uint8Array): boolean {
    this.check(queue, 'Send');
    if (this.down) return false;
    if (frame.length > STREAM_MAX_FRAME)
      throw new NetBackendError('Send', `${this.description}: a frame of ${frame.length} bytes is too large`, {});
    this.flush();
    if (this.pendingBytes + 4 + frame.length > STREAM_MAX_PENDING) {
      this.droppedFull++;
      return false;
    }
    const msg = new Uint8Array(4 + frame.length);
    new DataView(msg.buffer).setUint32(0, frame.length, false);
    msg.set(frame, 4);
    this.pending.push(msg);
    this.pendingBytes += msg.length;
    this.flush();
    return true;
  }

  /** Writes what waits until the socket is full; then watches for it to become writable. */
  private flush(): void {
    while (this.pending.length && !this.down) {
      const head = this.pending[0];
      const n = Number(net.send(this.sock, head, head.length, MSG_DONTWAIT | MSG_NOSIGNAL));
      if (n < 0) {
        const e = errno();
        if (e === ERRNO.EINTR) continue;
        if (e === ERRNO.EAGAIN) break;
        this.stop(`send failed: ${errnoName(e)}`);
        return;
      }
      this.pendingBytes -= n;
      if (n === head.length) this.pending.shift();
      else this.pending[0] = head.subarray(n);
    }
    if (this.pending.length && !this.writable && this.loop && !this.down) {
      if (this.writeFd < 0) this.writeFd = Number(c.fcntl(this.sock, F_DUPFD_CLOEXEC, 0));
      if (this.writeFd < 0) {
        this.stop(`dup failed: ${errnoName(errno())}`);
        return;
      }
      this.writable = this.loop.watch(this.writeFd, { writable: true }, () => {
        this.flush();
      });
    } else if (!this.pending.length && this.writable) {
      this.unwatchWritable();
    }
  }

  /** Stops watching for writability and closes the duplicate fd (it keeps the socket open). */
  private unwatchWritable(): void {
    this.writable?.dispose();
    this.writable = undefined;
    if (this.writeFd >= 0) c.close(this.writeFd);
    this.writeFd = -1;
  }

  recv(queue: number, buf: Uint8Array): number {
    this.check(queue, 'Recv');
    if (this.down) return -1;
    for (;;) {
      if (!this.frame) {
        const n = this.read(this.header.subarray(this.headerHave));
        if (n < 0) return -1;
        this.headerHave += n;
        if (this.headerHave < 4) continue;
        const len = new DataView(this.header.buffer).getUint32(0, false);
        if (len > STREAM_MAX_FRAME) {
          this.stop(`the peer sent a frame length of ${len} bytes`);
          return -1;
        }
        this.headerHave = 0;
        this.frame = new Uint8Array(len);
        this.frameHave = 0;
      }
      if (this.frameHave < this.frame.length) {
        const n = this.read(this.frame.subarray(this.frameHave));
        if (n < 0) return -1;
        this.frameHave += n;
        if (this.frameHave < this.frame.length) continue;
      }
      const f = this.frame;
      this.frame = undefined;
      buf.set(f.subarray(0, Math.min(f.length, buf.length)));
      return f.length;
    }
  }

  /** Reads into `into`: bytes read, or -1 when nothing waits (or the stream ended: the backend stops). */
  private read(into: Uint8Array): number {
    if (into.length === 0) return 0;
    for (;;) {
      const n = Number(net.recv(this.sock, into, into.length, MSG_DONTWAIT));
      if (n > 0) return n;
      if (n === 0) {
        this.stop('the peer closed the stream');
        return -1;
      }
      const e = errno();
      if (e === ERRNO.EINTR) continue;
      if (e === ERRNO.EAGAIN) return -1;
      this.stop(`recv failed: ${errnoName(e)}`);
      return -1;
    }
  }

  /**
   * The stream is over: put a never-readable fd (an eventfd) in the socket's place, so the device's watch
   * on this fd number goes quiet instead of reporting end-of-file forever; the socket is closed by that.
   */
  private stop(why: string): void {
    if (this.down) return;
    this.down = true;
    this.unwatchWritable();
    this.pending = [];
    this.pendingBytes = 0;
    const quiet = Number(c.eventfd(0, 0o2000000 | 0o4000));
    if (quiet >= 0) {
      net.dup2(quiet, this.sock);
      c.close(quiet);
    }
    this.onClosed?.(`${this.description}: ${why}`);
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
    this.unwatchWritable();
    c.close(this.sock);
  }
}

function openError(call: string, path: string, e: number): NetBackendError {
  return new NetBackendError('Open', `stream backend ${path}: ${call} failed: ${errnoName(e)} (${e})`, {
    call,
    errno: e,
  });
}
