import { expect } from 'chai';
import { parseSmaps } from './proc-memory.js';

const map = (start: number, size: number, path: string, rss: number, pss = rss) =>
  `${start.toString(16)}-${(start + size).toString(16)} rw-p 00000000 00:00 0    ${path}\nSize: ${size >> 10} kB\nRss: ${rss} kB\nPss: ${pss} kB\n`;

describe('bench parseSmaps', () => {
  it('subtracts the resident part of the guest-RAM-sized anonymous mapping', () => {
    const text =
      map(0x10000000, 256 << 20, '', 40000) +
      map(0x40000000, 4 << 20, '[heap]', 3000, 1500) +
      map(0x50000000, 1 << 20, '/usr/bin/node', 900, 450);
    expect(parseSmaps(text, 256 << 20)).to.deep.equal({
      rssKiB: 43900,
      pssKiB: 41950,
      guestRssKiB: 40000,
      overheadKiB: 3900,
    });
  });
  it('ignores file mappings and mappings of other sizes', () => {
    const text = map(0x10000000, 256 << 20, '/some/file', 500) + map(0x30000000, 512 << 20, '', 700);
    expect(parseSmaps(text, 256 << 20).guestRssKiB).to.equal(0);
  });
});
