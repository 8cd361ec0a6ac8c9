import { c, EFD_CLOEXEC, EFD_NONBLOCK, EFD_SEMAPHORE, errno, ERRNO, NativeError } from '../native/libc.js';
import type { EventFd, EventFdFactory } from './event-loop.js';
import { EventLoopError } from './errors.js';

/** A Linux eventfd. The fd is owned by this object; close() releases it (once). */
export class LinuxEventFd implements EventFd {
  private readonly buf = new Uint8Array(8);
  private closed = false;

  constructor(readonly fd: number) {}

  write(n: bigint = 1n): void {
    if (this.closed) throw new EventLoopError('EventFd', `eventfd ${this.fd} is closed`);
    if (n <= 0n || n >= 0xffffffffffffffffn)
      throw new EventLoopError('EventFd', `eventfd value ${n} out of range`, { n });
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, n, true);
    for (;;) {
      if (Number(c.write(this.fd, b, 8)) === 8) return;
      const e = errno();
      if (e === ERRNO.EINTR) continue;
      if (e === ERRNO.EAGAIN) return; // counter saturated: the reader is already woken
      throw new EventLoopError('EventFd', new NativeError('write(eventfd)', e).message, { fd: this.fd, errno: e });
    }
  }

  read(): bigint {
    if (this.closed) throw new EventLoopError('EventFd', `eventfd ${this.fd} is closed`);
    for (;;) {
      if (Number(c.read(this.fd, this.buf, 8)) === 8) return new DataView(this.buf.buffer).getBigUint64(0, true);
      const e = errno();
      if (e === ERRNO.EINTR) continue;
      if (e === ERRNO.EAGAIN) return 0n;
      throw new EventLoopError('EventFd', new NativeError('read(eventfd)', e).message, { fd: this.fd, errno: e });
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    c.close(this.fd);
  }
}

/** Creates eventfds (close-on-exec; non-blocking unless asked otherwise). */
export class LinuxEventFdFactory implements EventFdFactory {
  create(opts: { nonBlocking?: boolean; semaphore?: boolean; initial?: number } = {}): EventFd {
    const flags = EFD_CLOEXEC | (opts.nonBlocking === false ? 0 : EFD_NONBLOCK) | (opts.semaphore ? EFD_SEMAPHORE : 0);
    const fd = Number(c.eventfd(opts.initial ?? 0, flags));
    if (fd < 0) throw new EventLoopError('EventFd', new NativeError('eventfd', errno()).message);
    return new LinuxEventFd(fd);
  }
}
