import { expect } from 'chai';
import { GuestAddress } from '../../core/address.js';
import { createAnonymousMmapMemory, createHeapMemory } from '../../core/memory/index.js';
import { HostIovec, IOV_MAX } from './iovec.js';

describe('plugins/virtio-net HostIovec', () => {
  const a = (n: number): GuestAddress => GuestAddress.of(n);

  it('gives the host address and length of each non-empty buffer of a mapped region', () => {
    const mem = createAnonymousMmapMemory({ regions: [{ start: 0n, size: 1n << 16n }, { start: 1n << 20n, size: 1n << 16n }], backend: 'anonymous' });
    try {
      const iov = new HostIovec();
      expect(iov.fill(mem, [{ addr: a(0x100), len: 12 }, { addr: a(0x2000), len: 0 }, { addr: a((1 << 20) + 8), len: 100 }])).to.equal(true);
      expect(iov.count).to.equal(2);
      expect(iov.raw[0]).to.equal(mem.regions[0].hostAddress + 0x100n);
      expect(iov.raw[1]).to.equal(12n);
      expect(iov.raw[2]).to.equal(mem.regions[1].hostAddress + 8n);
      expect(iov.raw[3]).to.equal(100n);
    } finally { mem.close(); }
  });

  it('refuses (the caller copies) buffers outside one region, heap memory and too many pieces', () => {
    const mem = createAnonymousMmapMemory({ regions: [{ start: 0n, size: 1n << 16n }, { start: 1n << 16n, size: 1n << 16n }], backend: 'anonymous' });
    const heap = createHeapMemory({ regions: [{ start: 0n, size: 1n << 16n }], backend: 'heap' });
    try {
      const iov = new HostIovec();
      expect(iov.fill(mem, [{ addr: a(0xfff0), len: 0x20 }])).to.equal(false); // spans two regions
      expect(iov.fill(mem, [{ addr: a(0x40000), len: 4 }])).to.equal(false); // in no region
      expect(iov.fill(heap, [{ addr: a(0), len: 4 }])).to.equal(false); // no host address
      expect(iov.fill(mem, Array.from({ length: IOV_MAX + 1 }, () => ({ addr: a(0), len: 1 })))).to.equal(false);
    } finally { mem.close(); heap.close(); }
  });
});
