import { expect } from 'chai';
import { VIRTIO_F_VERSION_1 } from '../../core/virtio/virtio.js';
import { VirtQueueError } from './errors.js';
import { SplitQueue } from './split-queue.js';
import { restoreQueue, saveQueue } from './state.js';
import { MockSplitQueue, testGuestMemory } from './testing.js';

describe('split queue state', () => {
  it('round-trips through JSON and continues from the saved indexes', () => {
    const mem = testGuestMemory(1 << 20);
    const drv = new MockSplitQueue(mem, 8);
    const q = new SplitQueue(0, 8);
    drv.configure(q);
    q.activate(mem, VIRTIO_F_VERSION_1);
    for (let i = 0; i < 3; i++) drv.addChain([{ addr: drv.alloc(1), len: 1 }]);
    q.addUsed(q.pop()!.head, 1);
    const saved = JSON.parse(JSON.stringify(saveQueue(q))) as unknown;

    const q2 = new SplitQueue(0, 8);
    const r = restoreQueue(q2, saved);
    expect(r.active).to.equal(true);
    q2.activate(mem, VIRTIO_F_VERSION_1, r.progress);
    expect(q2.pop()!.head).to.equal(1); // the second chain: the first was consumed before the save
    q2.addUsed(1, 1);
    expect(drv.readUsed().map((u) => u.id)).to.deep.equal([0, 1]);
  });

  it('rejects hostile state', () => {
    const q = new SplitQueue(0, 8);
    const good = saveQueue(q);
    const bad: unknown[] = [
      undefined,
      'x',
      { ...good, version: 0 },
      { ...good, maxSize: 16 },
      { ...good, size: 12 },
      { ...good, size: 16 },
      { ...good, descTable: '-1' },
      { ...good, usedRing: '18446744073709551616' },
      { ...good, nextUsed: 65536 },
      { ...good, nextAvail: 1.5 },
      { ...good, unknown: true },
    ];
    for (const s of bad) expect(() => restoreQueue(q, s), JSON.stringify(s)).to.throw(VirtQueueError);
  });
});
