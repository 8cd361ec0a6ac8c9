import { expect } from 'chai';
import { formatPciAddress, pciAddress } from './address.js';

describe('core/pci address', () => {
  it('formats as lspci does', () => {
    expect(formatPciAddress(pciAddress(0, 0, 5, 0))).to.equal('0000:00:05.0');
    expect(formatPciAddress(pciAddress(0x1a, 0xff, 31, 7))).to.equal('001a:ff:1f.7');
  });
  it('refuses parts out of range', () => {
    expect(() => pciAddress(0, 0, 32, 0)).to.throw(RangeError, /device 32/);
    expect(() => pciAddress(0, 256, 0, 0)).to.throw(RangeError, /bus 256/);
    expect(() => pciAddress(0, 0, 0, 8)).to.throw(RangeError, /function 8/);
    expect(() => pciAddress(-1, 0, 0, 0)).to.throw(RangeError, /segment -1/);
    expect(() => pciAddress(0, 0, 1.5, 0)).to.throw(RangeError);
  });
});
