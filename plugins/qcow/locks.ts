/** A FIFO async mutex: metadata updates (L1/L2/refcounts) run one at a time. */
export class Mutex {
  private tail: Promise<void> = Promise.resolve();
  /** run() calls that have not finished (holding or waiting). */
  private users = 0;

  /** No run() holds or waits for the lock: synchronous code may read what it guards. */
  get idle(): boolean {
    return this.users === 0;
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    const prev = this.tail;
    let release!: () => void;
    this.tail = new Promise<void>((r) => (release = r));
    this.users++;
    await prev;
    try {
      return await fn();
    } finally {
      this.users--;
      release();
    }
  }
}

/**
 * Requests run shared; flush and close run exclusive, so clusters freed by discards are
 * only handed out again once no request that might still use them is in flight.
 */
export class RwLock {
  private readers = 0;
  private writer = false;
  private readonly queue: Array<{ excl: boolean; go: () => void }> = [];

  shared<T>(fn: () => Promise<T>): Promise<T> {
    if (!this.writer && this.queue.length === 0) {
      // Free and nobody waiting: taken at once (what drain() would do a microtask later).
      this.readers++;
      const done = (): void => {
        this.readers--;
        this.drain();
      };
      let p: Promise<T>;
      try {
        p = fn();
      } catch (e) {
        done();
        return Promise.reject(e);
      }
      return p.finally(done);
    }
    return this.with(false, fn);
  }

  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return this.with(true, fn);
  }

  private async with<T>(excl: boolean, fn: () => Promise<T>): Promise<T> {
    await new Promise<void>((go) => {
      this.queue.push({ excl, go });
      this.drain();
    });
    try {
      return await fn();
    } finally {
      if (excl) this.writer = false;
      else this.readers--;
      this.drain();
    }
  }

  private drain(): void {
    while (this.queue.length > 0) {
      const next = this.queue[0]!;
      if (this.writer) return;
      if (next.excl) {
        if (this.readers > 0) return;
        this.writer = true;
      } else {
        this.readers++;
      }
      this.queue.shift();
      next.go();
    }
  }
}
