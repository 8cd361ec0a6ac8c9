import { expect } from 'chai';
import { AcpiError } from '../errors.js';
import { eisaId, integer, nameString, pkgLength, string } from './encoding.js';
import { field, method, pkg } from './terms.js';

const bytes = (s: string): number[] => [...s].map((c) => c.charCodeAt(0));

describe('AML encoding', () => {
  it('encodes PkgLength in 1..4 bytes, counting its own bytes, at every boundary', () => {
    expect([...pkgLength(0)]).to.deep.equal([1]);
    expect([...pkgLength(62)]).to.deep.equal([63]);
    // 63 content bytes + 2 length bytes = 65 = 0x41: lead 0x41 (1 follower, low nibble 1), then 0x04
    expect([...pkgLength(63)]).to.deep.equal([0x41, 0x04]);
    expect([...pkgLength(0xffd)]).to.deep.equal([0x4f, 0xff]); // 0xfff total
    expect([...pkgLength(0xffe)]).to.deep.equal([0x81, 0x00, 0x01]); // 0x1001 total, 3 bytes
    expect([...pkgLength(0xffffc)]).to.deep.equal([0x8f, 0xff, 0xff]);
    expect([...pkgLength(0xffffd)]).to.deep.equal([0xc1, 0x00, 0x00, 0x01]);
    expect(() => pkgLength(2 ** 28))
      .to.throw(AcpiError)
      .with.property('kind', 'TooLarge');
  });

  it('picks the shortest integer encoding and refuses what does not fit 64 bits', () => {
    expect([...integer(0)]).to.deep.equal([0x00]);
    expect([...integer(1)]).to.deep.equal([0x01]);
    expect([...integer(2)]).to.deep.equal([0x0a, 2]);
    expect([...integer(0xff)]).to.deep.equal([0x0a, 0xff]);
    expect([...integer(0x100)]).to.deep.equal([0x0b, 0x00, 0x01]);
    expect([...integer(0x10000)]).to.deep.equal([0x0c, 0, 0, 1, 0]);
    expect([...integer(0x1_0000_0000n)]).to.deep.equal([0x0e, 0, 0, 0, 0, 1, 0, 0, 0]);
    expect([...integer((1n << 64n) - 1n)]).to.deep.equal([0x0e, ...new Array(8).fill(0xff)]);
    expect(() => integer(1n << 64n))
      .to.throw(AcpiError)
      .with.property('kind', 'InvalidValue');
    expect(() => integer(-1)).to.throw(AcpiError);
    expect(() => integer(2 ** 53)).to.throw(AcpiError, /bigint/);
  });

  it('encodes name strings with root, parent, dual and multi name prefixes, padding short segments', () => {
    expect([...nameString('_HID')]).to.deep.equal(bytes('_HID'));
    expect([...nameString('_SB')]).to.deep.equal(bytes('_SB_'));
    expect([...nameString('\\_S5')]).to.deep.equal([0x5c, ...bytes('_S5_')]);
    expect([...nameString('\\_SB.PCI0')]).to.deep.equal([0x5c, 0x2e, ...bytes('_SB_PCI0')]);
    expect([...nameString('^^S08.B0EJ')]).to.deep.equal([0x5e, 0x5e, 0x2e, ...bytes('S08_B0EJ')]);
    expect([...nameString('\\_SB.PCI0.S08')]).to.deep.equal([0x5c, 0x2f, 3, ...bytes('_SB_PCI0S08_')]);
    expect([...nameString('\\')]).to.deep.equal([0x5c, 0x00]);
    for (const bad of ['', 'lower', '1ABC', 'ABCDE', '\\_SB..X', 'A-B'])
      expect(() => nameString(bad), bad)
        .to.throw(AcpiError)
        .with.property('kind', 'InvalidName');
  });

  it('encodes strings as NUL-terminated ASCII and EISA ids as ASL compiles them', () => {
    expect([...string('LNRO0005')]).to.deep.equal([0x0d, ...bytes('LNRO0005'), 0]);
    expect([...string('')]).to.deep.equal([0x0d, 0]);
    expect(() => string('é')).to.throw(AcpiError);
    expect(() => string('a\0b')).to.throw(AcpiError);
    expect([...eisaId('PNP0C02')]).to.deep.equal([0x0c, 0x41, 0xd0, 0x0c, 0x02]);
    expect([...eisaId('PNP0A08')]).to.deep.equal([0x0c, 0x41, 0xd0, 0x0a, 0x08]);
    expect(() => eisaId('pnp0a08')).to.throw(AcpiError);
  });

  it('encodes method flags, field unit bit counts and packages past 255 elements', () => {
    // Method(PCNT, 1, Serialized, 3): flags = args | serialized << 3 | sync << 4
    expect([...method('PCNT', 1, [], { serialized: true, syncLevel: 3 })]).to.deep.equal([
      0x14,
      6,
      ...bytes('PCNT'),
      0x39,
    ]);
    expect(() => method('X', 8, [])).to.throw(AcpiError);
    // a field unit's length is the raw bit count (100 bits: two-byte form 0x44 0x06)
    const f = field('REG', [{ name: 'A', bits: 100 }]);
    expect([...f.subarray(f.length - 6)]).to.deep.equal([...bytes('A___'), 0x44, 0x06]);
    const big = pkg(Array.from({ length: 300 }, () => 0));
    expect(big[0]).to.equal(0x13, 'VarPackageOp');
  });
});
