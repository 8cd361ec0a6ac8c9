import { expect } from 'chai';
import { GuestAddress } from '../../core/address.js';
import { createAnonymousMmapMemory, createHeapMemory } from '../../core/memory/index.js';
import { copyToBuffers, HostIovec, IOV_MAX, RegionCache } from './iovec.js';

describe('plugins/virtio-net HostIovec', () => {
  const a = (n: number): GuestAddress => GuestAddress.of(n);

  it('gives the host address and length of each non-empty buffer of a mapped region', () => {
    const mem = createAnonymousMmapMemory({
      regions: [
        { start: 0n, size: 1n << 16n },
        { start: 1n << 20n, size: 1n << 16n },
      ],
      backend: 'anonymous',
    });
    try {
      const iov = new HostIovec();
      expect(
        iov.fill(mem, [
          { addr: a(0x100), len: 12 },
          { addr: a(0x2000), len: 0 },
          { addr: a((1 << 20) + 8), len: 100 },
        ]),
      ).to.equal(true);
      expect(iov.count).to.equal(2);
      expect(iov.entry(0)).to.deep.equal({ base: mem.regions[0].hostAddress + 0x100n, len: 12n });
      expect(iov.entry(1)).to.deep.equal({ base: mem.regions[1].hostAddress + 8n, len: 100n });
      expect(iov.secondByte).to.equal(0);
      mem.write(a(0x101), Uint8Array.of(3));
      iov.fill(mem, [{ addr: a(0x100), len: 12 }]);
      expect(iov.secondByte).to.equal(3);
      iov.fill(mem, [{ addr: a(0x101), len: 1 }]);
      expect(iov.secondByte).to.equal(-1);
    } finally {
      mem.close();
    }
  });

  it('refuses (the caller copies) buffers outside one region, heap memory and too many pieces', () => {
    const mem = createAnonymousMmapMemory({
      regions: [
        { start: 0n, size: 1n << 16n },
        { start: 1n << 16n, size: 1n << 16n },
      ],
      backend: 'anonymous',
    });
    const heap = createHeapMemory({ regions: [{ start: 0n, size: 1n << 16n }], backend: 'heap' });
    try {
      const iov = new HostIovec();
      expect(iov.fill(mem, [{ addr: a(0xfff0), len: 0x20 }])).to.equal(false); // spans two regions
      expect(iov.fill(mem, [{ addr: a(0x40000), len: 4 }])).to.equal(false); // in no region
      expect(iov.fill(heap, [{ addr: a(0), len: 4 }])).to.equal(false); // no host address
      expect(
        iov.fill(
          mem,
          Array.from({ length: IOV_MAX + 1 }, () => ({ addr: a(0), len: 1 })),
        ),
      ).to.equal(false);
    } finally {
      mem.close();
      heap.close();
    }
  });

  it('copyToBuffers writes across buffers through region views, refuses buffers across regions, and usable() is false once memory is closed', () => {
    const mem = createHeapMemory({
      regions: [
        { start: 0n, size: 1n << 16n },
        { start: 1n << 16n, size: 1n << 16n },
      ],
      backend: 'heap',
    });
    const cache = new RegionCache();
    expect(cache.usable(mem)).to.equal(true);
    const data = Uint8Array.from({ length: 30 }, (_, i) => i + 1);
    expect(
      copyToBuffers(
        cache,
        mem,
        [
          { addr: a(0x100), len: 10 },
          { addr: a(0x10010), len: 64 },
        ],
        data,
      ),
    ).to.equal(true);
    expect([...mem.read(a(0x100), 10)]).to.deep.equal([...data.subarray(0, 10)]);
    expect([...mem.read(a(0x10010), 20)]).to.deep.equal([...data.subarray(10)]);
    expect(copyToBuffers(cache, mem, [{ addr: a(0xfff0), len: 0x20 }], data)).to.equal(false); // spans two regions
    expect(copyToBuffers(cache, mem, [{ addr: a(0x100), len: 10 }], data)).to.equal(false); // too small
    mem.close();
    expect(cache.usable(mem)).to.equal(false);
  });
});
