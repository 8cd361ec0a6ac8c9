import { expect } from 'chai';
import { A64 } from './testing.js';

describe('kvm arm64 test assembler (A64)', () => {
  it('encodes like GNU as', () => {
    // aarch64-linux-gnu-as + objdump of the same instructions
    const p = new A64()
      .movz(1, 0x0900, 16)
      .movz(2, 0x41, 0, false)
      .strb(2, 1)
      .movz(0, 8, 0, false)
      .movk(0, 0x8400, 16, false)
      .hvc(0)
      .spin()
      .movz(2, 0x4000, 16)
      .movk(2, 0x100);
    const words = Array.from({ length: 9 }, (_, i) => Buffer.from(p.bytes()).readUInt32LE(i * 4));
    expect(words).to.deep.equal([
      0xd2a12001, 0x52800822, 0x39000022, 0x52800100, 0x72b08000, 0xd4000002, 0x14000000, 0xd2a80002, 0xf2802002,
    ]);
  });
  it('loads 64-bit constants and refuses bad operands', () => {
    const w = (a: A64) =>
      Array.from({ length: a.bytes().length / 4 }, (_, i) => Buffer.from(a.bytes()).readUInt32LE(i * 4));
    expect(w(new A64().mov64(2, 0x4000_0100n))).to.deep.equal([0xd2802002, 0xf2a80002]);
    expect(w(new A64().mov64(3, 0n))).to.deep.equal([0xd2800003]);
    expect(() => new A64().movz(31, 0)).to.throw(RangeError);
    expect(() => new A64().movz(0, 0x10000)).to.throw(RangeError);
    expect(() => new A64().movz(0, 1, 8)).to.throw(RangeError);
  });
});
