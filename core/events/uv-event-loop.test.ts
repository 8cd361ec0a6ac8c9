import { expect } from 'chai';
import { UvEventLoop } from './uv-event-loop.js';
import { LinuxEventFdFactory } from './linux-eventfd.js';
import { EventLoopError } from './errors.js';

const tick = (ms = 20) => new Promise((r) => setTimeout(r, ms));

describe('LinuxEventFd', () => {
  it('counts writes, reads reset, empty read returns 0n', () => {
    const e = new LinuxEventFdFactory().create();
    try {
      expect(e.read()).to.equal(0n);
      e.write(2n); e.write();
      expect(e.read()).to.equal(3n);
      expect(e.read()).to.equal(0n);
    } finally { e.close(); }
    expect(() => e.read()).to.throw(EventLoopError);
    e.close();
  });

  it('semaphore mode reads one at a time', () => {
    const e = new LinuxEventFdFactory().create({ semaphore: true, initial: 2 });
    try {
      expect(e.read()).to.equal(1n);
      expect(e.read()).to.equal(1n);
      expect(e.read()).to.equal(0n);
    } finally { e.close(); }
  });
});

describe('UvEventLoop', () => {
  it('delivers an eventfd write to the watcher on the main loop; dispose stops delivery', async () => {
    const loop = new UvEventLoop();
    const e = new LinuxEventFdFactory().create();
    const got: bigint[] = [];
    const w = loop.watch(e.fd, { readable: true }, (r) => { expect(r.readable).to.equal(true); got.push(e.read()); });
    try {
      e.write(5n);
      await tick();
      expect(got).to.deep.equal([5n]);
      e.write(1n);
      await tick();
      expect(got).to.deep.equal([5n, 1n]);
      w.dispose();
      e.write(7n);
      await tick();
      expect(got).to.deep.equal([5n, 1n]); // nothing after dispose
      expect(e.read()).to.equal(7n); // the write happened; nobody consumed it
    } finally { w.dispose(); e.close(); }
  });

  it('contains exceptions from callbacks and reports them', async () => {
    const loop = new UvEventLoop();
    const errs: string[] = [];
    loop.onError((err, where) => errs.push(`${where}:${(err as Error).message}`));
    const e = new LinuxEventFdFactory().create();
    const w = loop.watch(e.fd, { readable: true }, () => { e.read(); throw new Error('device bug'); });
    loop.setTimer(1, () => { throw new Error('timer bug'); });
    try {
      e.write();
      await tick(30);
      expect(errs).to.include(`watch fd ${e.fd}:device bug`);
      expect(errs).to.include('timer:timer bug');
    } finally { w.dispose(); e.close(); }
  });

  it('repeating timers run until disposed; loop.dispose stops everything', async () => {
    const loop = new UvEventLoop();
    let n = 0;
    loop.setTimer(1, () => { n++; }, { repeat: true });
    const e = new LinuxEventFdFactory().create();
    loop.watch(e.fd, { readable: true }, () => { e.read(); });
    await tick(30);
    expect(n).to.be.greaterThan(1);
    expect(loop.activeCount).to.equal(2);
    loop.dispose();
    const seen = n;
    await tick(20);
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
