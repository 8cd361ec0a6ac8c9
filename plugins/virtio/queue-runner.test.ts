import { expect } from 'chai';
import { VIRTIO_F_VERSION_1 } from '../../core/virtio/virtio.js';
import { drainQueue } from './queue-runner.js';
import { SplitQueue } from './split-queue.js';
import { MockSplitQueue, testGuestMemory } from './testing.js';

describe('drainQueue', () => {
  function setup() {
    const mem = testGuestMemory(1 << 20);
    const drv = new MockSplitQueue(mem, 16);
    const q = new SplitQueue(0, 16);
    drv.configure(q);
    q.activate(mem, VIRTIO_F_VERSION_1);
    return { drv, q };
  }

  it('handles every available chain, re-enables notifications and signals once', () => {
    const { drv, q } = setup();
    for (let i = 0; i < 5; i++) drv.addChain([{ addr: drv.alloc(4), len: 4, write: true }]);
    const signals: number[] = [];
    const r = drainQueue(q, (c) => c.writableLength, {
      signalUsedQueue: (i) => signals.push(i),
      signalConfigChange: () => {},
    });
    expect(r).to.deep.equal({ handled: 5, more: false });
    expect(drv.readUsed().map((u) => u.len)).to.deep.equal([4, 4, 4, 4, 4]);
    expect(signals).to.deep.equal([0]);
    expect(drv.usedFlags).to.equal(0); // notifications enabled again
  });

  it('stops at the budget and says there is more', () => {
    const { drv, q } = setup();
    for (let i = 0; i < 5; i++) drv.addChain([{ addr: drv.alloc(1), len: 1 }]);
    expect(drainQueue(q, () => 0, undefined, 2)).to.deep.equal({ handled: 2, more: true });
    expect(drainQueue(q, () => 0, undefined, 10)).to.deep.equal({ handled: 3, more: false });
  });
});
