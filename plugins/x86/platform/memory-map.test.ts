import { expect } from 'chai';
import { X86Layout } from '../layout.js';
import { X86BootError } from '../errors.js';
import { E820_RAM, E820_RESERVED, e820Map, lowRamEnd, ramRegions } from './memory-map.js';

const GiB = 1n << 30n;

describe('x86 memory map', () => {
  it('keeps small guests below the 32-bit hole', () => {
    expect(ramRegions(512n << 20n)).to.deep.equal([{ start: 0n, size: 512n << 20n }]);
  });

  it('moves RAM beyond MMIO32_START above 4 GiB and lists it in e820', () => {
    const regions = ramRegions(6n * GiB);
    expect(regions).to.deep.equal([
      { start: 0n, size: X86Layout.MMIO32_START },
      { start: 4n * GiB, size: 6n * GiB - X86Layout.MMIO32_START },
    ]);
    expect(lowRamEnd(regions)).to.equal(X86Layout.MMIO32_START);
    const map = e820Map(regions);
    expect(map).to.deep.equal([
      { addr: 0n, size: X86Layout.EBDA_START, type: E820_RAM },
      { addr: X86Layout.EBDA_START, size: 0x100000n - X86Layout.EBDA_START, type: E820_RESERVED },
      { addr: 0x100000n, size: X86Layout.MMIO32_START - 0x100000n, type: E820_RAM },
      { addr: X86Layout.KVM_IDENTITY_MAP, size: 0x4000n, type: E820_RESERVED },
      { addr: 4n * GiB, size: 6n * GiB - X86Layout.MMIO32_START, type: E820_RAM },
    ]);
    const ram = map.filter((e) => e.type === E820_RAM).reduce((s, e) => s + e.size, 0n);
    expect(ram).to.equal(6n * GiB - (0x100000n - X86Layout.EBDA_START), 'all RAM but the legacy area is usable');
  });

  it('refuses memory too small or not page-sized', () => {
    expect(() => ramRegions(1n << 20n))
      .to.throw(X86BootError)
      .with.property('kind', 'MemoryTooSmall');
    expect(() => ramRegions((64n << 20n) + 1n))
      .to.throw(X86BootError)
      .with.property('kind', 'MemoryTooSmall');
  });
});
