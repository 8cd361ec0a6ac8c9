import { expect } from 'chai';
import { GuestAddress } from '../../core/address.js';
import { GuestMemoryError } from '../../core/memory/errors.js';
import { VIRTIO_F_VERSION_1 } from '../../core/virtio/virtio.js';
import { ChainReader, ChainWriter } from './chain-io.js';
import { VirtQueueError } from './errors.js';
import { SplitQueue } from './split-queue.js';
import { MockSplitQueue, memoryWithRom } from './testing.js';

const chainOf = (readable: [bigint, number][], writable: [bigint, number][]) => {
  const b = ([a, len]: [bigint, number]) => ({ addr: GuestAddress.of(a), len });
  return {
    head: 0,
    readable: readable.map(b),
    writable: writable.map(b),
    readableLength: readable.reduce((s, [, l]) => s + l, 0),
    writableLength: writable.reduce((s, [, l]) => s + l, 0),
  };
};

describe('device writes and read-only guest memory', () => {
  it('ChainWriter refuses a writable buffer in read-only memory and leaves it untouched', () => {
    const { mem, rom } = memoryWithRom();
    const c = chainOf(
      [],
      [
        [0x1000n, 4],
        [rom + 16n, 8],
      ],
    );
    for (const attempt of [
      (w: ChainWriter) => w.write(new Uint8Array(12)),
      (w: ChainWriter) => w.fill(12, 1),
      (w: ChainWriter) => w.slices(12),
    ]) {
      try {
        attempt(new ChainWriter(mem, c));
        expect.fail('expected ReadOnly');
      } catch (e) {
        expect(e).to.be.instanceOf(GuestMemoryError);
        expect((e as GuestMemoryError).kind).to.equal('ReadOnly');
      }
    }
    expect([...mem.read(GuestAddress.of(rom + 16n), 8)]).to.deep.equal(new Array(8).fill(0x5a));
    // Reading a device-readable buffer there is fine.
    expect([...new ChainReader(mem, chainOf([[rom, 2]], [])).read(2)]).to.deep.equal([0x5a, 0x5a]);
  });

  it('a used ring in read-only memory is refused at activation', () => {
    const { mem, rom } = memoryWithRom();
    const drv = new MockSplitQueue(mem, 8);
    const q = new SplitQueue(0, 8);
    drv.configure(q);
    q.usedRing = rom;
    try {
      q.activate(mem, VIRTIO_F_VERSION_1);
      expect.fail('expected ReadOnlyMemory');
    } catch (e) {
      expect(e).to.be.instanceOf(VirtQueueError);
      expect((e as VirtQueueError).kind).to.equal('ReadOnlyMemory');
    }
    expect([...mem.read(GuestAddress.of(rom), 4)]).to.deep.equal([0x5a, 0x5a, 0x5a, 0x5a]);
  });
});
