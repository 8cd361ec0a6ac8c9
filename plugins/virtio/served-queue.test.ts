import { expect } from 'chai';
import { VIRTIO_F_RING_EVENT_IDX, VIRTIO_F_VERSION_1, type VirtioInterrupt } from '../../core/virtio/virtio.js';
import { ServedQueue } from './served-queue.js';
import { SplitQueue } from './split-queue.js';
import { MockSplitQueue, testGuestMemory } from './testing.js';

describe('ServedQueue (the shared stop / fail -> NEEDS_RESET / signal tail)', () => {
  function setup(features = VIRTIO_F_VERSION_1, raise?: () => void) {
    const mem = testGuestMemory(1 << 20);
    const drv = new MockSplitQueue(mem, 8);
    const q = new SplitQueue(3, 8);
    drv.configure(q);
    q.activate(mem, features);
    const signals: number[] = [];
    const resets: string[] = [];
    let stops = 0;
    let counted = 0;
    const interrupt: VirtioInterrupt = {
      signalUsedQueue: (i) => (raise ? raise() : signals.push(i)),
      signalConfigChange: () => {},
    };
    const served = new ServedQueue({
      queue: q,
      interrupt,
      needsReset: (r) => resets.push(r),
      label: 'RX queue 3',
      onStop: () => stops++,
      onInterrupt: () => counted++,
    });
    return { drv, q, served, signals, resets, stops: () => stops, counted: () => counted, interrupt };
  }

  it('returns chains and interrupts once for a batch, only after something went back', () => {
    const { drv, q, served, signals, counted } = setup();
    expect(served.signal()).to.equal(false);
    for (let i = 0; i < 3; i++) drv.addChain([{ addr: drv.alloc(4), len: 4, write: true }]);
    served.run(() => {
      for (let c = q.pop(); c; c = q.pop()) served.addUsed(c.head, 2);
    });
    expect(served.signal()).to.equal(true);
    expect(served.signal()).to.equal(false); // nothing new went back
    expect(signals).to.deep.equal([3]);
    expect(counted()).to.equal(1);
    expect(drv.readUsed().map((u) => u.len)).to.deep.equal([2, 2, 2]);
  });

  it('does not interrupt when the driver asked for none (EVENT_IDX used_event not passed)', () => {
    const { drv, q, served, signals } = setup(VIRTIO_F_VERSION_1 | VIRTIO_F_RING_EVENT_IDX);
    drv.setUsedEvent(5); // interrupt me only when used.idx passes 5
    drv.addChain([{ addr: drv.alloc(4), len: 4, write: true }]);
    served.run(() => served.addUsed(q.pop()!.head, 0));
    expect(served.signal()).to.equal(false);
    expect(signals).to.deep.equal([]);
  });

  it('a throwing step stops the queue, asks for a reset once with the label, and never escapes', () => {
    const { served, resets, stops } = setup();
    served.run(() => {
      throw new Error('descriptor 9 out of range');
    });
    expect(served.stopped).to.equal(true);
    expect(resets).to.deep.equal(['RX queue 3: descriptor 9 out of range']);
    expect(stops()).to.equal(1);
    served.fail('again');
    let ran = false;
    served.run(() => (ran = true));
    expect(ran).to.equal(false);
    expect(resets).to.have.length(1);
    expect(stops()).to.equal(1);
  });

  it('after stop(), signal() raises nothing and no reset is asked for', () => {
    const { drv, q, served, signals, resets, stops } = setup();
    drv.addChain([{ addr: drv.alloc(4), len: 4, write: true }]);
    served.addUsed(q.pop()!.head, 0);
    served.stop();
    served.stop();
    expect(served.signal()).to.equal(false);
    expect(signals).to.deep.equal([]);
    expect(resets).to.deep.equal([]);
    expect(stops()).to.equal(1);
  });

  it('an interrupt that throws fails the queue instead of escaping', () => {
    const { drv, q, served, resets } = setup(VIRTIO_F_VERSION_1, () => {
      throw new Error('irqfd gone');
    });
    drv.addChain([{ addr: drv.alloc(4), len: 4, write: true }]);
    served.addUsed(q.pop()!.head, 0);
    expect(served.signal()).to.equal(false);
    expect(served.stopped).to.equal(true);
    expect(resets).to.deep.equal(['RX queue 3: irqfd gone']);
  });

  it('a refusing limiter arms one wake-up, which stop() cancels', () => {
    const { served } = setup();
    const armed: (() => void)[] = [];
    let cancelled = 0;
    let allow = false;
    const limiter = {
      tryConsume: () => allow,
      whenReady: (cb: () => void) => {
        armed.push(cb);
        return { dispose: () => cancelled++ };
      },
    };
    let woken = 0;
    expect(served.consume(limiter, 100, () => woken++)).to.equal(false);
    expect(served.consume(limiter, 100, () => woken++)).to.equal(false);
    expect(armed).to.have.length(1); // one wait at a time
    expect(served.waiting).to.equal(true);
    armed[0]();
    expect(woken).to.equal(1);
    expect(served.waiting).to.equal(false);
    allow = true;
    expect(served.consume(limiter, 100, () => woken++)).to.equal(true);
    allow = false;
    served.consume(limiter, 100, () => woken++);
    served.stop();
    expect(cancelled).to.equal(1);
    expect(served.waiting).to.equal(false);
  });
});
