import { expect } from 'chai';
import { inflateSync } from 'node:zlib';
import { Canvas, crc32 } from './png.js';

describe('bench PNG encoder', () => {
  it('computes the PNG CRC-32 (check value of "IEND")', () => {
    expect(crc32(Buffer.from('IEND'))).to.equal(0xae426082);
  });
  it('writes a PNG whose IDAT inflates to the canvas rows', () => {
    const c = new Canvas(3, 2);
    c.set(1, 1, [1, 2, 3]);
    const png = c.png();
    expect([...png.subarray(0, 8)]).to.deep.equal([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    expect(png.readUInt32BE(16)).to.equal(3);
    expect(png.readUInt32BE(20)).to.equal(2);
    const idatAt = png.indexOf('IDAT');
    const len = png.readUInt32BE(idatAt - 4);
    const raw = inflateSync(png.subarray(idatAt + 4, idatAt + 4 + len));
    expect(raw.length).to.equal(2 * (1 + 9));
    expect([...raw.subarray(10 + 1 + 3, 10 + 1 + 6)]).to.deep.equal([1, 2, 3]);
  });
});
