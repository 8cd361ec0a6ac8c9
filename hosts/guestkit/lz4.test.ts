import { expect } from 'chai';
import fc from 'fast-check';
import { spawnSync } from 'node:child_process';
import { lz4DecompressBlock, lz4DecompressLegacy, LZ4_LEGACY_MAGIC } from './lz4.js';
import { skipUnlessCi } from '../../test/setup/environment.js';

function frame(...blocks: number[][]): Uint8Array {
  const parts: number[] = [];
  const u32 = (v: number) => [v & 255, (v >>> 8) & 255, (v >>> 16) & 255, (v >>> 24) & 255];
  parts.push(...u32(LZ4_LEGACY_MAGIC));
  for (const b of blocks) parts.push(...u32(b.length), ...b);
  return Uint8Array.from(parts);
}

describe('guestkit LZ4 legacy decompressor', () => {
  it('copies a literal-only block', () => {
    const block = [0x50, ...Buffer.from('hello')];
    expect(Buffer.from(lz4DecompressLegacy(frame(block), 5)).toString()).to.equal('hello');
  });

  it('expands an overlapping match (run-length) and long lengths', () => {
    // literal "ab", then match offset 2 length 4+15+10 = 29, then literal-only last sequence "Z"
    const block = [0x2f, 0x61, 0x62, 0x02, 0x00, 10, 0x10, 0x5a];
    const out = Buffer.from(lz4DecompressLegacy(frame(block), 2 + 29 + 1)).toString();
    expect(out).to.equal('ab'.repeat(15) + 'a' + 'Z');
  });

  it('ignores the kernel size trailer after the last chunk', () => {
    const f = frame([0x30, 0x61, 0x62, 0x63]);
    const withTrailer = Uint8Array.from([...f, 3, 0, 0, 0]);
    expect(Buffer.from(lz4DecompressLegacy(withTrailer, 3)).toString()).to.equal('abc');
  });

  it('rejects offsets before the output, truncated chunks and wrong sizes', () => {
    expect(() => lz4DecompressLegacy(frame([0x10, 0x61, 0x05, 0x00]), 100)).to.throw(/points before the output/);
    const f = frame([0x50, ...Buffer.from('hello')]);
    expect(() => lz4DecompressLegacy(f.subarray(0, f.length - 2), 5)).to.throw(/truncated|past/);
    expect(() => lz4DecompressLegacy(f, 6)).to.throw(/expected 6/);
    expect(() => lz4DecompressLegacy(Uint8Array.from([1, 2, 3, 4]))).to.throw(/bad magic/);
  });

  it('never writes past its limit or throws anything but its own error on random input', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        const dst = new Uint8Array(64);
        try {
          const n = lz4DecompressBlock(bytes, 0, bytes.length, dst, 0, 64);
          return n <= 64;
        } catch (e) {
          return (e as Error).name === 'GuestKitError';
        }
      }),
    );
  });

  it('matches the lz4 tool on real data (legacy frame, several chunks)', function () {
    this.timeout(20_000);
    if (spawnSync('lz4', ['--version']).status !== 0) skipUnlessCi(this, 'the lz4 tool is not installed (Debian lz4)');
    const data = Buffer.alloc(9 << 20);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >> 10)) & 0xff;
    const r = spawnSync('lz4', ['-l', '-c'], { input: data, maxBuffer: 64 << 20 });
    expect(r.status).to.equal(0);
    expect(Buffer.from(lz4DecompressLegacy(r.stdout, data.length)).equals(data)).to.equal(true);
  });
});
