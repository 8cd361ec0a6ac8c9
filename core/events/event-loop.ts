import type { Disposable } from '../bus/bus.js';

/**
 * Readiness of file descriptors delivered on the main libuv loop (no thread hop;
 * see machine-facts §3), timers, and eventfds. Callbacks run on the main thread.
 * An exception thrown by a callback is caught, logged and reported to `onError`;
 * it never takes the VMM down.
 */
export interface EventLoop {
  /** Calls `cb` each time `fd` is readable (or writable, per `events`). */
  watch(
    fd: number,
    events: { readable?: boolean; writable?: boolean },
    cb: (ready: { readable: boolean; writable: boolean }) => void,
  ): Disposable;
  setTimer(ms: number, cb: () => void, opts?: { repeat?: boolean }): Disposable;
  onError(cb: (err: unknown, where: string) => void): Disposable;
}

/** A Linux eventfd owned by its creator; close() releases it. */
export interface EventFd {
  readonly fd: number;
  /** Adds n to the counter (wakes readers). */
  write(n?: bigint): void;
  /** Reads and resets the counter; returns 0n when nothing was pending (non-blocking). */
  read(): bigint;
  close(): void;
}

/**
 * Makes eventfds (the EventFdFactory token; LinuxEventFdFactory in production). Options: non-blocking (the default when
 * omitted), semaphore mode (each read takes 1), and the initial counter value. The caller owns the EventFd and closes
 * it.
 */
export interface EventFdFactory {
  create(opts?: { nonBlocking?: boolean; semaphore?: boolean; initial?: number }): EventFd;
}
