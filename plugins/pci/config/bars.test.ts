import { expect } from 'chai';
import type { PciBarSpec } from '../../../core/pci/device.js';
import { PciConfigSpace } from './space.js';
import { decodedBarBase } from './bars.js';
import { PciReg } from './registers.js';

const header = { vendorId: 0x8086, deviceId: 0x1234, classCode: 0xff0000 };
const bar = (o: number): number => PciReg.BAR0 + 4 * o;

/** The all-ones probe as Linux's __pci_read_base does it: save, write ones, read, restore. */
function probe(s: PciConfigSpace, index: number): number {
  const saved = s.read(bar(index), 4);
  s.write(bar(index), 4, 0xffff_ffff);
  const answer = s.read(bar(index), 4);
  s.write(bar(index), 4, saved);
  expect(s.read(bar(index), 4)).to.equal(saved);
  return answer;
}

describe('pci BAR registers', () => {
  it('answer the sizing probe as hardware does, for every kind', () => {
    const bars: PciBarSpec[] = [
      { index: 0, kind: 'mmio32', size: 0x1000n },
      { index: 1, kind: 'io', size: 0x20n },
      { index: 2, kind: 'mmio64', size: 0x4000n, prefetchable: true },
      { index: 4, kind: 'mmio64', size: 16n << 30n },
    ];
    const s = new PciConfigSpace({ ...header, bars });
    expect(probe(s, 0)).to.equal(0xffff_f000);
    expect(probe(s, 1)).to.equal(0x0000_ffe1);
    expect(probe(s, 2)).to.equal(0xffff_c00c);
    expect(probe(s, 3)).to.equal(0xffff_ffff);
    expect(probe(s, 4)).to.equal(0x4); // 64-bit, not prefetchable, no address bits below 16 GiB
    expect(probe(s, 5)).to.equal(0xffff_fffc);
    // Undeclared registers read 0 whatever is written: no BAR.
    const none = new PciConfigSpace({ ...header, bars: [{ index: 0, kind: 'mmio32', size: 16n }] });
    expect(probe(none, 1)).to.equal(0);
    expect(probe(none, 0)).to.equal(0xffff_fff0);
    expect(probe(none, 6)).to.equal(0); // 0x28: CardBus CIS
    none.write(PciReg.EXPANSION_ROM, 4, 0xffff_ffff);
    expect(none.read(PciReg.EXPANSION_ROM, 4)).to.equal(0);
  });

  it('hold the addresses a guest writes, keeping the flag bits', () => {
    const s = new PciConfigSpace({
      ...header,
      bars: [
        { index: 0, kind: 'mmio64', size: 0x1000n, prefetchable: true },
        { index: 2, kind: 'io', size: 8n },
      ],
    });
    s.write(bar(0), 4, 0xfebc_1234);
    s.write(bar(1), 4, 0x0000_0012);
    s.write(bar(2), 4, 0xffff_c0c3);
    expect(s.read(bar(0), 4)).to.equal(0xfebc_100c);
    expect(s.barAddress(0)).to.equal(0x12_febc_1000n);
    expect(s.barAddress(2)).to.equal(0xc0c0n);
    expect(s.read(bar(2), 4)).to.equal(0xc0c1);
  });

  it('decode only with the command register bit on, at a base that fits', () => {
    const s = new PciConfigSpace({
      ...header,
      bars: [
        { index: 0, kind: 'mmio32', size: 0x1000n },
        { index: 1, kind: 'io', size: 0x100n },
      ],
    });
    const read = (o: number, n: 1 | 2 | 4): number => s.read(o, n);
    s.write(bar(0), 4, 0xe000_0000);
    s.write(bar(1), 4, 0xc000);
    expect(decodedBarBase(read, s.bars[0])).to.equal(undefined);
    s.write(PciReg.COMMAND, 2, 2);
    expect(decodedBarBase(read, s.bars[0])).to.equal(0xe000_0000n);
    expect(decodedBarBase(read, s.bars[1])).to.equal(undefined);
    s.write(PciReg.COMMAND, 2, 3);
    expect(decodedBarBase(read, s.bars[1])).to.equal(0xc000n);
    s.write(bar(0), 4, 0xffff_ffff); // sizing with decode on: not a window
    expect(decodedBarBase(read, s.bars[0])).to.equal(undefined);
    s.write(bar(1), 4, 0);
    expect(decodedBarBase(read, s.bars[1])).to.equal(undefined);
  });

  it('refuse BAR lists real hardware could not have', () => {
    const make = (bars: PciBarSpec[]) => () => new PciConfigSpace({ ...header, bars });
    expect(make([{ index: 0, kind: 'mmio32', size: 0x1800n }])).to.throw(/power of two/);
    expect(make([{ index: 5, kind: 'mmio64', size: 0x1000n }])).to.throw(/after BAR 5/);
    expect(make([{ index: 6, kind: 'mmio32', size: 0x1000n }])).to.throw(/no BAR register/);
    expect(make([{ index: 0, kind: 'io', size: 0x200n }])).to.throw(/4..256/);
    expect(make([{ index: 0, kind: 'mmio32', size: 8n }])).to.throw(/16 bytes/);
    expect(
      make([
        { index: 0, kind: 'mmio64', size: 0x1000n },
        { index: 1, kind: 'mmio32', size: 0x1000n },
      ]),
    ).to.throw(/overlaps/);
  });
});
