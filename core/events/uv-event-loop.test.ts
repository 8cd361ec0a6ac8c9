import { expect } from 'chai';
import { UvEventLoop } from './uv-event-loop.js';
import { LinuxEventFdFactory } from './linux-eventfd.js';
import { EventLoopError } from './errors.js';

/** Resolves after Node's timers phase ran `n` more times: a due 1 ms timer of the loop would have fired in each. */
async function timerPhases(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setTimeout(r, 1));
}

/** A watched eventfd whose deliveries can be awaited: `next()` resolves with the next value read. */
function awaitable(loop: UvEventLoop) {
  const e = new LinuxEventFdFactory().create();
  const got: bigint[] = [];
  let waiting: ((v: bigint) => void) | undefined;
  const w = loop.watch(e.fd, { readable: true }, (r) => {
    expect(r.readable).to.equal(true);
    const v = e.read();
    got.push(v);
    waiting?.(v);
  });
  const next = () =>
    new Promise<bigint>((r) => {
      waiting = r;
    });
  return { e, w, got, next };
}

describe('LinuxEventFd', () => {
  it('counts writes, reads reset, empty read returns 0n', () => {
    const e = new LinuxEventFdFactory().create();
    try {
      expect(e.read()).to.equal(0n);
      e.write(2n);
      e.write();
      expect(e.read()).to.equal(3n);
      expect(e.read()).to.equal(0n);
    } finally {
      e.close();
    }
    expect(() => e.read()).to.throw(EventLoopError);
    e.close();
  });

  it('semaphore mode reads one at a time', () => {
    const e = new LinuxEventFdFactory().create({ semaphore: true, initial: 2 });
    try {
      expect(e.read()).to.equal(1n);
      expect(e.read()).to.equal(1n);
      expect(e.read()).to.equal(0n);
    } finally {
      e.close();
    }
  });
});

describe('UvEventLoop', () => {
  it('delivers an eventfd write to the watcher on the main loop; dispose stops delivery', async () => {
    const loop = new UvEventLoop();
    const { e, w, got, next } = awaitable(loop);
    const control = awaitable(loop); // a second watch on the same loop: proof the loop polled again
    try {
      let n = next();
      e.write(5n);
      expect(await n).to.equal(5n);
      n = next();
      e.write(1n);
      expect(await n).to.equal(1n);
      w.dispose();
      e.write(7n);
      // two control deliveries after the write: the loop polled e's fd at least once since it became readable
      for (const v of [1n, 2n]) {
        const c = control.next();
        control.e.write(v);
        expect(await c).to.equal(v);
      }
      expect(got).to.deep.equal([5n, 1n]); // nothing after dispose
      expect(e.read()).to.equal(7n); // the write happened; nobody consumed it
    } finally {
      w.dispose();
      e.close();
      control.w.dispose();
      control.e.close();
    }
  });

  it('contains exceptions from callbacks and reports them', async () => {
    const loop = new UvEventLoop();
    const errs: string[] = [];
    let both!: () => void;
    const reported = new Promise<void>((r) => {
      both = r;
    });
    loop.onError((err, where) => {
      if (errs.push(`${where}:${(err as Error).message}`) === 2) both();
    });
    const e = new LinuxEventFdFactory().create();
    const w = loop.watch(e.fd, { readable: true }, () => {
      e.read();
      throw new Error('device bug');
    });
    loop.setTimer(1, () => {
      throw new Error('timer bug');
    });
    try {
      e.write();
      await reported;
      expect(errs).to.include(`watch fd ${e.fd}:device bug`);
      expect(errs).to.include('timer:timer bug');
    } finally {
      w.dispose();
      e.close();
    }
  });

  it('repeating timers run until disposed; loop.dispose stops everything', async () => {
    const loop = new UvEventLoop();
    let n = 0;
    let twice!: () => void;
    const repeated = new Promise<void>((r) => {
      twice = r;
    });
    loop.setTimer(
      1,
      () => {
        if (++n === 2) twice();
      },
      { repeat: true },
    );
    const e = new LinuxEventFdFactory().create();
    loop.watch(e.fd, { readable: true }, () => {
      e.read();
    });
    await repeated;
    expect(loop.activeCount).to.equal(2);
    loop.dispose();
    const seen = n;
    await timerPhases(3); // a live 1 ms repeating timer would have run in these
    expect(n).to.equal(seen);
    expect(loop.activeCount).to.equal(0);
    expect(() => loop.setTimer(1, () => {})).to.throw(EventLoopError);
    e.close();
  });

  it('rejects bad fds', () => {
    const loop = new UvEventLoop();
    expect(() => loop.watch(-1, { readable: true }, () => {})).to.throw(EventLoopError);
    expect(() => loop.watch(0, {}, () => {})).to.throw(EventLoopError);
  });
});
