import type { Disposable } from '../bus/bus.js';
import type { Logger } from '../logger.js';
import type { EventLoop } from './event-loop.js';
import { EventLoopError } from './errors.js';
import {
  addressOfPointer,
  allocHandle,
  CloseCb,
  freeHandle,
  PollCb,
  registerCallback,
  uv,
  UV_READABLE,
  UV_WRITABLE,
} from './libuv.js';

type Ready = { readable: boolean; writable: boolean };
interface Watch {
  fd: number;
  cb: (r: Ready) => void;
  loop: UvEventLoop;
}

/**
 * Handle address -> live watch. One poll callback and one close callback are registered
 * with koffi for the whole process (never unregistered), so each watch costs no trampoline.
 */
const watches = new Map<bigint, Watch>();
let pollCb: bigint | undefined;
let closeCb: bigint | undefined;

function callbacks(): { poll: bigint; close: bigint } {
  pollCb ??= registerCallback(
    ((handle: unknown, status: number, events: number) => {
      const w = watches.get(addressOfPointer(handle));
      if (!w) return;
      if (status < 0) {
        w.loop.report(
          new EventLoopError('Watch', `polling fd ${w.fd} failed: ${uv.strerror(status)}`, { fd: w.fd, status }),
          `watch fd ${w.fd}`,
        );
        return;
      }
      w.loop.invoke(
        () => w.cb({ readable: (events & UV_READABLE) !== 0, writable: (events & UV_WRITABLE) !== 0 }),
        `watch fd ${w.fd}`,
      );
    }) as never,
    PollCb,
  );
  // The handle's memory may only be freed once libuv calls back after uv_close.
  closeCb ??= registerCallback(
    ((handle: unknown) => {
      freeHandle(addressOfPointer(handle));
    }) as never,
    CloseCb,
  );
  return { poll: pollCb, close: closeCb };
}

/**
 * The EventLoop on Node's own libuv loop: fd readiness through uv_poll (an eventfd write
 * reaches the callback on the main thread in ~2 µs, no thread hop), timers through
 * setTimeout/setInterval. Callback exceptions are caught, logged and sent to onError.
 * A watch keeps the process alive until disposed (like any active libuv handle).
 */
export class UvEventLoop implements EventLoop {
  private readonly errorHandlers = new Set<(err: unknown, where: string) => void>();
  private readonly live = new Set<Disposable>();
  private disposed = false;

  constructor(private readonly logger?: Logger) {}

  watch(fd: number, events: { readable?: boolean; writable?: boolean }, cb: (ready: Ready) => void): Disposable {
    if (this.disposed) throw new EventLoopError('Disposed', 'the event loop was disposed');
    if (!Number.isInteger(fd) || fd < 0) throw new EventLoopError('Watch', `cannot watch fd ${fd}`, { fd });
    const mask = (events.readable ? UV_READABLE : 0) | (events.writable ? UV_WRITABLE : 0);
    if (mask === 0) throw new EventLoopError('Watch', `watch of fd ${fd} asks for no events`, { fd });
    const { poll, close } = callbacks();
    const handle = allocHandle();
    let r = uv.pollInit(uv.defaultLoop(), handle, fd);
    if (r < 0) {
      freeHandle(handle); // never initialised: libuv does not own it
      throw new EventLoopError('Watch', `uv_poll_init(fd ${fd}): ${uv.strerror(r)}`, { fd, status: r });
    }
    watches.set(handle, { fd, cb, loop: this });
    r = uv.pollStart(handle, mask, poll);
    if (r < 0) {
      watches.delete(handle);
      uv.close(handle, close);
      throw new EventLoopError('Watch', `uv_poll_start(fd ${fd}): ${uv.strerror(r)}`, { fd, status: r });
    }
    let done = false;
    const d: Disposable = {
      dispose: () => {
        if (done) return;
        done = true;
        this.live.delete(d);
        watches.delete(handle); // no more deliveries, even if an event is already queued
        uv.pollStop(handle);
        uv.close(handle, close); // memory freed in the close callback
      },
    };
    this.live.add(d);
    return d;
  }

  setTimer(ms: number, cb: () => void, opts?: { repeat?: boolean }): Disposable {
    if (this.disposed) throw new EventLoopError('Disposed', 'the event loop was disposed');
    const run = (): void => this.invoke(cb, 'timer');
    const t = opts?.repeat
      ? setInterval(run, ms)
      : setTimeout(() => {
          this.live.delete(d);
          run();
        }, ms);
    const d: Disposable = {
      dispose: () => {
        clearTimeout(t);
        this.live.delete(d);
      },
    };
    this.live.add(d);
    return d;
  }

  onError(cb: (err: unknown, where: string) => void): Disposable {
    this.errorHandlers.add(cb);
    return {
      dispose: () => {
        this.errorHandlers.delete(cb);
      },
    };
  }

  /** Runs a callback, containing any exception. */
  invoke(fn: () => void, where: string): void {
    try {
      fn();
    } catch (err) {
      this.report(err, where);
    }
  }

  report(err: unknown, where: string): void {
    this.logger?.error({ err, where }, `event callback failed (${where})`);
    for (const h of this.errorHandlers) {
      try {
        h(err, where);
      } catch {
        /* a failing error handler is ignored */
      }
    }
  }

  /** Stops every watch and timer made through this loop. */
  dispose(): void {
    this.disposed = true;
    for (const d of [...this.live]) d.dispose();
  }

  get activeCount(): number {
    return this.live.size;
  }
}
