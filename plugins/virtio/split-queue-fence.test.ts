import { expect } from 'chai';
import { VIRTIO_F_RING_EVENT_IDX, VIRTIO_F_VERSION_1 } from '../../core/virtio/virtio.js';
import { VRING_AVAIL_F_NO_INTERRUPT } from './constants.js';
import { fullFence } from './fence.js';
import { SplitQueue } from './split-queue.js';
import { MockSplitQueue, testGuestMemory } from './testing.js';

/**
 * The fence is where the device's store must be visible and the driver's store may land:
 * the test's fence plays the driver racing with the device at that instant (it records what
 * the device published so far, then publishes its own half). A queue that reads before the
 * fence, or skips it, sees the driver's old value and the test fails.
 */
function setup(features: bigint) {
  const mem = testGuestMemory(1 << 20);
  const drv = new MockSplitQueue(mem, 8);
  let onFence: (() => void) | undefined;
  let fences = 0;
  const q = new SplitQueue(0, 8, () => {
    fences++;
    onFence?.();
  });
  drv.configure(q);
  q.activate(mem, VIRTIO_F_VERSION_1 | features);
  return {
    drv,
    q,
    race: (fn: () => void) => {
      onFence = fn;
    },
    fences: () => fences,
  };
}

describe('SplitQueue memory fences', () => {
  it('enableNotification: clears NO_NOTIFY, fences, then re-reads avail.idx', () => {
    const { drv, q, race, fences } = setup(0n);
    q.disableNotification();
    let flagsAtFence = -1;
    race(() => {
      flagsAtFence = drv.usedFlags;
      drv.addChain([{ addr: drv.alloc(1), len: 1 }]);
    });
    expect(q.enableNotification()).to.equal(true);
    expect(flagsAtFence).to.equal(0);
    expect(fences()).to.equal(1);
  });

  it('enableNotification with EVENT_IDX: publishes avail_event, fences, then re-reads avail.idx', () => {
    const { drv, q, race } = setup(VIRTIO_F_RING_EVENT_IDX);
    drv.addChain([{ addr: drv.alloc(1), len: 1 }]);
    q.disableNotification();
    q.pop();
    let eventAtFence = -1;
    race(() => {
      eventAtFence = drv.availEvent;
      drv.addChain([{ addr: drv.alloc(1), len: 1 }]);
    });
    expect(q.enableNotification()).to.equal(true);
    expect(eventAtFence).to.equal(1);
  });

  it('needsNotification with EVENT_IDX: used.idx is published before the fence, used_event read after', () => {
    const { drv, q, race } = setup(VIRTIO_F_RING_EVENT_IDX);
    drv.setUsedEvent(100); // the driver does not want an interrupt yet...
    drv.addChain([{ addr: drv.alloc(1), len: 1 }]);
    q.addUsed(q.pop()!.head, 1);
    let usedAtFence = -1;
    race(() => {
      usedAtFence = drv.usedIdx;
      drv.setUsedEvent(0);
    }); // ...and changes its mind at that instant
    expect(q.needsNotification()).to.equal(true);
    expect(usedAtFence).to.equal(1);
  });

  it('needsNotification without EVENT_IDX: the avail flags are read after the fence', () => {
    const { drv, q, race } = setup(0n);
    drv.setAvailFlags(VRING_AVAIL_F_NO_INTERRUPT);
    drv.addChain([{ addr: drv.alloc(1), len: 1 }]);
    q.addUsed(q.pop()!.head, 1);
    race(() => drv.setAvailFlags(0));
    expect(q.needsNotification()).to.equal(true);
  });

  it('pop, addUsed and disableNotification need no fence; the default fence is the real one', () => {
    const { drv, q, fences } = setup(0n);
    drv.addChain([{ addr: drv.alloc(1), len: 1 }]);
    q.disableNotification();
    q.addUsed(q.pop()!.head, 1);
    expect(fences()).to.equal(0);
    expect((new SplitQueue(0, 8) as unknown as { fence: unknown }).fence).to.equal(fullFence);
    fullFence();
  });
});
