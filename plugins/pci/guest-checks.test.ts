import { expect } from 'chai';
import { pciGuestProblems } from './guest-checks.js';

/** What the guest printed in the linux-tier run (Debian 6.1 cloud kernel), in the script's key names. */
const good = new Map([
  ['pcidev-0000:00:00.0', '0x8086:0x0d57:0x060000'],
  ['pcidev-0000:00:01.0', '0x1234:0x7e57:0xff0000'],
  ['pci-mmconfig', '1'],
  ['pci-hostbridge', '1'],
  ['pci-problems', '0'],
]);

describe('pci guest checks', () => {
  it('find nothing wrong in a good run and name each thing that is wrong', () => {
    expect(pciGuestProblems(good, { '0000:00:01.0': '0x1234:0x7e57' })).to.deep.equal([]);
    const bad = new Map(good);
    bad.delete('pcidev-0000:00:00.0');
    bad.set('pci-problems', '2');
    bad.set('pci-mmconfig', '0');
    const found = pciGuestProblems(bad, { '0000:00:02.0': '0x1af4:0x1042' });
    expect(found).to.have.length(4);
    expect(found.join('\n'))
      .to.match(/host bridge.*missing/)
      .and.match(/00:02.0.*expected 0x1af4:0x1042/);
    expect(found.join('\n'))
      .to.match(/MCFG/)
      .and.match(/resource problems/);
  });
});
