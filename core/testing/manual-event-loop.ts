import type { Disposable } from '../bus/bus.js';
import type { EventFd, EventFdFactory, EventLoop } from '../events/event-loop.js';

type Ready = { readable: boolean; writable: boolean };

/**
 * An EventLoop double driven by the test: nothing happens until `flush()` (fd watchers
 * whose FakeEventFd has a pending count) or `advance(ms)` (timers). Exceptions in
 * callbacks go to onError handlers and are kept in `errors`.
 */
export class ManualEventLoop implements EventLoop {
  private readonly watchers = new Map<number, Set<(r: Ready) => void>>();
  private timers: { due: number; every?: number; cb: () => void; id: number }[] = [];
  private readonly errorHandlers = new Set<(err: unknown, where: string) => void>();
  private now = 0;
  private nextId = 1;
  readonly errors: { err: unknown; where: string }[] = [];
  /** Fds considered readable besides FakeEventFds with a count (e.g. set by a test for a socket double). */
  readonly readable = new Set<number>();
  private readonly fds = new Map<number, FakeEventFd>();

  watch(fd: number, _events: { readable?: boolean; writable?: boolean }, cb: (r: Ready) => void): Disposable {
    const set = this.watchers.get(fd) ?? new Set();
    set.add(cb);
    this.watchers.set(fd, set);
    return {
      dispose: () => {
        set.delete(cb);
      },
    };
  }

  setTimer(ms: number, cb: () => void, opts?: { repeat?: boolean }): Disposable {
    const id = this.nextId++;
    this.timers.push({ due: this.now + ms, every: opts?.repeat ? Math.max(ms, 1) : undefined, cb, id });
    return {
      dispose: () => {
        this.timers = this.timers.filter((t) => t.id !== id);
      },
    };
  }

  onError(cb: (err: unknown, where: string) => void): Disposable {
    this.errorHandlers.add(cb);
    return {
      dispose: () => {
        this.errorHandlers.delete(cb);
      },
    };
  }

  /** @internal FakeEventFd registers itself so flush() can see its counter. */
  attach(fd: FakeEventFd): void {
    this.fds.set(fd.fd, fd);
  }

  private invoke(fn: () => void, where: string): void {
    try {
      fn();
    } catch (err) {
      this.errors.push({ err, where });
      for (const h of this.errorHandlers) h(err, where);
    }
  }

  /** Delivers readiness until nothing is ready (bounded); returns how many callbacks ran. */
  flush(maxRounds = 1000): number {
    let ran = 0;
    for (let round = 0; round < maxRounds; round++) {
      let any = false;
      for (const [fd, cbs] of this.watchers) {
        const ready = this.readable.has(fd) || (this.fds.get(fd)?.pending ?? 0n) > 0n;
        if (!ready || cbs.size === 0) continue;
        any = true;
        for (const cb of [...cbs]) {
          ran++;
          this.invoke(() => cb({ readable: true, writable: false }), `watch fd ${fd}`);
        }
        this.readable.delete(fd);
      }
      if (!any) break;
    }
    return ran;
  }

  /** Moves fake time forward, firing due timers in order. */
  advance(ms: number): void {
    const end = this.now + ms;
    for (;;) {
      const next = this.timers.filter((t) => t.due <= end).sort((a, b) => a.due - b.due)[0];
      if (!next) break;
      this.now = next.due;
      if (next.every) next.due += next.every;
      else this.timers = this.timers.filter((t) => t !== next);
      this.invoke(next.cb, 'timer');
    }
    this.now = end;
  }

  get watchedFds(): number[] {
    return [...this.watchers].filter(([, s]) => s.size > 0).map(([fd]) => fd);
  }
}

let fakeFd = 100_000;

/** An eventfd double: a counter in memory with a fake fd number. */
export class FakeEventFd implements EventFd {
  readonly fd = fakeFd++;
  pending = 0n;
  closed = false;
  writes = 0;
  constructor(
    private readonly semaphore = false,
    initial = 0,
  ) {
    this.pending = BigInt(initial);
  }
  write(n = 1n): void {
    if (this.closed) throw new Error('eventfd closed');
    this.pending += n;
    this.writes++;
  }
  read(): bigint {
    if (this.closed) throw new Error('eventfd closed');
    if (this.pending === 0n) return 0n;
    if (this.semaphore) {
      this.pending--;
      return 1n;
    }
    const v = this.pending;
    this.pending = 0n;
    return v;
  }
  close(): void {
    this.closed = true;
  }
}

/**
 * Creates FakeEventFds (attached to `loop` when given, so its flush delivers their signals) and keeps them in `created`
 * for tests to inspect.
 */
export class FakeEventFdFactory implements EventFdFactory {
  readonly created: FakeEventFd[] = [];
  constructor(private readonly loop?: ManualEventLoop) {}
  create(opts: { nonBlocking?: boolean; semaphore?: boolean; initial?: number } = {}): FakeEventFd {
    const e = new FakeEventFd(opts.semaphore, opts.initial);
    this.loop?.attach(e);
    this.created.push(e);
    return e;
  }
}
