import { expect } from 'chai';
import { VIRTIO_F_VERSION_1 } from '../../core/virtio/virtio.js';
import { VirtQueueError } from './errors.js';
import { SplitQueue } from './split-queue.js';
import { checkQueueState, loadQueueState, QueueStateSchema, saveQueue } from './state.js';
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
    const saved = JSON.parse(JSON.stringify(QueueStateSchema.encode(saveQueue(q)))) as unknown;

    const q2 = new SplitQueue(0, 8);
    const s = QueueStateSchema.parse(saved);
    checkQueueState(q2, s);
    const progress = loadQueueState(q2, s);
    expect(progress).to.deep.equal({ nextAvail: 1, nextUsed: 1, signalledUsed: 0 });
    q2.activate(mem, VIRTIO_F_VERSION_1, progress);
    expect(saveQueue(q2)).to.deep.equal(saveQueue(q));
    expect(q2.pop()!.head).to.equal(1); // the second chain: the first was consumed before the save
    q2.addUsed(1, 1);
    expect(drv.readUsed().map((u) => u.id)).to.deep.equal([0, 1]);
  });

  it('rejects hostile state', () => {
    const q = new SplitQueue(0, 8);
    const good = QueueStateSchema.encode(saveQueue(q));
    const badSchema: unknown[] = [
      undefined,
      'x',
      { ...good, size: 12 },
      { ...good, descTable: '-1' },
      { ...good, usedRing: '18446744073709551616' },
      { ...good, nextUsed: 65536 },
      { ...good, nextAvail: 1.5 },
      { ...good, unknown: true },
    ];
    for (const s of badSchema) expect(QueueStateSchema.safeParse(s).success, JSON.stringify(s)).to.equal(false);
    for (const edit of [{ maxSize: 16 }, { size: 16 }, { active: true, ready: false }]) {
      const s = QueueStateSchema.parse({ ...good, ...edit });
      expect(() => checkQueueState(q, s), JSON.stringify(edit)).to.throw(VirtQueueError);
    }
  });
});
