import { expect } from 'chai';
import { GuestAddress } from '../../core/address.js';
import { createHeapMemory } from '../../core/memory/backends/heap.js';
import type { DescriptorChain } from '../../core/virtio/virtio.js';
import { ChainReader, ChainWriter } from './chain-io.js';
import { VirtQueueError } from './errors.js';

const buf = (addr: bigint, len: number) => ({ addr: GuestAddress.of(addr), len });
function chain(readable: [bigint, number][], writable: [bigint, number][]): DescriptorChain {
  const r = readable.map(([x, l]) => buf(x, l)),
    w = writable.map(([x, l]) => buf(x, l));
  return {
    head: 0,
    readable: r,
    writable: w,
    readableLength: r.reduce((s, b) => s + b.len, 0),
    writableLength: w.reduce((s, b) => s + b.len, 0),
  };
}

describe('ChainReader / ChainWriter', () => {
  // Two adjacent regions: [0, 0x1000) and [0x1000, 0x2000), so buffers may span them.
  const mem = createHeapMemory({
    regions: [
      { start: 0n, size: 0x1000n },
      { start: 0x1000n, size: 0x1000n },
    ],
    backend: 'heap',
  });
  mem.write(GuestAddress.of(0x100), Uint8Array.from([1, 2, 3]));
  mem.write(GuestAddress.of(0xffe), Uint8Array.from([4, 5, 6, 7]));

  it('reads a byte stream across buffers and regions', () => {
    const r = new ChainReader(
      mem,
      chain(
        [
          [0x100n, 3],
          [0xffen, 4],
        ],
        [],
      ),
    );
    expect(r.remaining).to.equal(7);
    expect([...r.read(2)]).to.deep.equal([1, 2]);
    expect([...r.read(5)]).to.deep.equal([3, 4, 5, 6, 7]);
    expect(r.remaining).to.equal(0);
    expect(() => r.read(1)).to.throw(VirtQueueError, /1 bytes asked, 0 left/);
  });

  it('gives zero-copy slices only where a range lies in one buffer and region', () => {
    const r = new ChainReader(
      mem,
      chain(
        [
          [0x100n, 3],
          [0xffen, 4],
        ],
        [],
      ),
    );
    const s = r.slice(3)!;
    expect([...s]).to.deep.equal([1, 2, 3]);
    mem.writeU8(GuestAddress.of(0x100), 9);
    expect(s[0]).to.equal(9); // aliases guest memory
    mem.writeU8(GuestAddress.of(0x100), 1);
    expect(r.slice(4)).to.equal(undefined); // spans two regions
    expect(r.remaining).to.equal(4);
    expect(r.slices(4).map((v) => v.length)).to.deep.equal([2, 2]);
  });

  it('reads little-endian integers', () => {
    mem.write(GuestAddress.of(0x200), Uint8Array.from([0x34, 0x12, 0x78, 0x56, 0x34, 0x12, 1, 0, 0, 0, 0, 0, 0, 0x80]));
    const r = new ChainReader(mem, chain([[0x200n, 14]], []));
    expect(r.readU16()).to.equal(0x1234);
    expect(r.readU32()).to.equal(0x12345678);
    expect(r.readU64()).to.equal(0x8000_0000_0000_0001n);
  });

  it('writes across writable buffers and counts the bytes', () => {
    const w = new ChainWriter(
      mem,
      chain(
        [],
        [
          [0x300n, 2],
          [0xfffn, 3],
        ],
      ),
    );
    w.write(Uint8Array.from([1, 2, 3]));
    w.writeU16(0xbbaa);
    expect(w.written).to.equal(5);
    expect([...mem.read(GuestAddress.of(0x300), 2)]).to.deep.equal([1, 2]);
    expect([...mem.read(GuestAddress.of(0xfff), 3)]).to.deep.equal([3, 0xaa, 0xbb]);
    expect(() => w.writeU8(1)).to.throw(VirtQueueError);
    expect(w.written).to.equal(5);
  });

  it('rejects a write larger than the chain without writing anything', () => {
    mem.fill(GuestAddress.of(0x400), 4, 0);
    const w = new ChainWriter(mem, chain([], [[0x400n, 4]]));
    expect(() => w.write(new Uint8Array(5).fill(0xee))).to.throw(VirtQueueError);
    expect([...mem.read(GuestAddress.of(0x400), 4)]).to.deep.equal([0, 0, 0, 0]);
    w.fill(4, 0x11);
    expect([...mem.read(GuestAddress.of(0x400), 4)]).to.deep.equal([0x11, 0x11, 0x11, 0x11]);
  });
});
