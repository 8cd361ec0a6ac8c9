import { expect } from 'chai';
import { testGuestMemory } from '../../../core/testing/test-memory.js';
import { IDENTITY_MAPPED_BYTES, translate, writeIdentityPageTables } from './paging.js';

describe('x86 boot identity page tables', () => {
  it('map every address of the first 4 GiB to itself and nothing above', () => {
    const mem = testGuestMemory(1 << 20);
    const cr3 = writeIdentityPageTables(mem);
    for (const va of [
      0n,
      0x1000n,
      0x100200n,
      0x1fffffn,
      0x200000n,
      0x3fff_ffffn,
      0x4000_0000n,
      0xc000_0000n,
      0xfee0_0000n,
      IDENTITY_MAPPED_BYTES - 1n,
    ]) {
      expect(translate(mem, cr3, va)).to.equal(va, `0x${va.toString(16)}`);
    }
    expect(translate(mem, cr3, IDENTITY_MAPPED_BYTES)).to.equal(undefined);
    expect(translate(mem, cr3, 1n << 39n)).to.equal(undefined);
  });
});
