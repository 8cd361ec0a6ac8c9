import { expect } from 'chai';
import { MockVm } from '../../core/testing/mock-hypervisor.js';
import { testGuestMemory } from '../../core/testing/test-memory.js';
import { createAnonymousMmapMemory } from '../../core/memory/backends/anonymous-mmap.js';
import { mapGuestMemory } from './memory.js';
import { KvmError } from './errors.js';

describe('mapGuestMemory', () => {
  it('gives each region a slot in address order', () => {
    const mem = createAnonymousMmapMemory({
      backend: 'anonymous',
      regions: [
        { start: 0x1_0000_0000n, size: 0x2000n },
        { start: 0n, size: 0x1000n },
      ],
    });
    try {
      const vm = new MockVm([]);
      const slots = mapGuestMemory(vm, mem, { firstSlot: 3, logDirtyPages: true });
      expect(slots.map((s) => [s.slot, s.guestAddress, s.size])).to.deep.equal([
        [3, 0n, 0x1000n],
        [4, 0x1_0000_0000n, 0x2000n],
      ]);
      expect(vm.slots.get(4)).to.include({ hostAddress: mem.regions[1].hostAddress, logDirtyPages: true });
    } finally {
      mem.close();
    }
  });
  it('refuses memory that has no host mapping', () => {
    expect(() => mapGuestMemory(new MockVm([]), testGuestMemory(0x1000))).to.throw(KvmError, /host mapping/);
  });
});
