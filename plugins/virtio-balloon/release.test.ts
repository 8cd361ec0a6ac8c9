import { expect } from 'chai';
import { testGuestMemory } from '../../core/testing/test-memory.js';
import { coalesce, MADV_DONTNEED, releasePages } from './release.js';
import { RegionGuestMemory, makeRegion } from '../../core/memory/region-guest-memory.js';

describe('virtio-balloon: giving guest pages back to the host', () => {
  it('coalesces ranges in any order, with repeats and overlaps', () => {
    expect(
      coalesce([
        { start: 0x3000n, length: 0x1000n },
        { start: 0x1000n, length: 0x1000n },
        { start: 0x2000n, length: 0x1000n },
        { start: 0x2000n, length: 0x1000n },
        { start: 0x8000n, length: 0n },
        { start: 0x9000n, length: 0x2000n },
        { start: 0xa000n, length: 0x800n },
      ]),
    ).to.deep.equal([
      { start: 0x1000n, length: 0x3000n },
      { start: 0x9000n, length: 0x2000n },
    ]);
  });

  it('advises each region once per contiguous run, at the host address of the guest range', () => {
    const mem = new RegionGuestMemory([
      makeRegion(0n, new Uint8Array(0x10000), 0x7000_0000n, { kind: 'anonymous' }),
      makeRegion(0x10000n, new Uint8Array(0x10000), 0x9000_0000n, { kind: 'memfd', fd: 99, offset: 0n }),
    ]);
    const calls: [bigint, bigint, number][] = [];
    const r = releasePages(
      mem,
      [
        { start: 0xe000n, length: 0x1000n },
        { start: 0xf000n, length: 0x2000n }, // crosses into the memfd region
        { start: 0x30000n, length: 0x1000n }, // outside RAM
      ],
      (a, l, adv) => (calls.push([a, l, adv]), 0),
    );
    expect(calls).to.deep.equal([
      [0x7000_e000n, 0x2000n, MADV_DONTNEED],
      [0x9000_0000n, 0x1000n, 9],
    ]);
    expect(r.released).to.equal(0x3000n);
    expect(r.refused).to.deep.equal([{ start: 0x30000n, length: 0x1000n, why: 'not guest RAM' }]);
  });

  it('a failing madvise is reported, not thrown', () => {
    const mem = new RegionGuestMemory([makeRegion(0n, new Uint8Array(0x4000), 0x1000_0000n, { kind: 'anonymous' })]);
    const r = releasePages(mem, [{ start: 0n, length: 0x1000n }], () => 22);
    expect(r.released).to.equal(0n);
    expect(r.refused[0].why).to.equal('madvise: EINVAL');
  });

  it('heap test memory is zeroed instead', () => {
    const mem = testGuestMemory(0x4000);
    mem.regions[0].bytes.fill(1);
    releasePages(mem, [{ start: 0x1000n, length: 0x1000n }]);
    expect(mem.regions[0].bytes[0x0fff]).to.equal(1);
    expect(mem.regions[0].bytes[0x1000]).to.equal(0);
    expect(mem.regions[0].bytes[0x2000]).to.equal(1);
  });
});
