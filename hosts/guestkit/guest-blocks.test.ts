import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { crc32 } from 'node:zlib';
import { BLOCK_SIZE, checkStressImage, expectedBlock } from './guest-blocks.js';
import { guestTool } from './tools.js';

// The host's copy of guestio's block format against the C program itself (compiled here with gcc).
describe('guestkit: guestio blocks, host and guest agree', function () {
  this.timeout(60_000);
  let dir: string;
  let guestio: string;
  before(() => {
    guestio = guestTool('guestio');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'guestio-'));
  });
  after(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const kv = (out: string) =>
    new Map(
      out
        .trim()
        .split('\n')
        .map((l) => l.split('=') as [string, string]),
    );

  it('stress: the digest and block count the host computes from the file equal what guestio prints', () => {
    const f = path.join(dir, 'stress.img');
    fs.writeFileSync(f, Buffer.alloc(4 << 20));
    const out = kv(execFileSync(guestio, ['stress', f, '4', '2', '4', '800', '0x77'], { encoding: 'utf8' }));
    expect(out.get('stress-errors')).to.equal('0');
    expect(out.get('stress-verify-bad')).to.equal('0');
    const host = checkStressImage(fs.readFileSync(f), 4 << 20, 0x77n);
    expect(host.bad).to.equal(0);
    expect(host.blocks).to.equal(Number(out.get('stress-blocks')));
    expect(host.blocks).to.be.greaterThan(100);
    expect(host.digest).to.equal(out.get('stress-digest'));
  });

  it('stress check: a damaged or stale block is found', () => {
    const f = path.join(dir, 'stress.img');
    const img = fs.readFileSync(f);
    const good = checkStressImage(img, img.length, 0x77n);
    const written = [...Array(img.length / BLOCK_SIZE).keys()].filter((b) => img[b * BLOCK_SIZE] !== 0);
    const b = written[3]!;
    const flipped = Buffer.from(img);
    flipped[b * BLOCK_SIZE + 100] ^= 1;
    expect(checkStressImage(flipped, img.length, 0x77n).badList).to.deep.equal([b]);
    const version = Number(img.readBigUInt64LE(b * BLOCK_SIZE + 16));
    const stale = Buffer.from(img);
    if (version > 1) expectedBlock(0x77n, b, version - 1).copy(stale, b * BLOCK_SIZE);
    else stale.fill(0, b * BLOCK_SIZE, (b + 1) * BLOCK_SIZE);
    const r = checkStressImage(stale, img.length, 0x77n);
    expect(r.bad).to.equal(0);
    expect(r.digest).to.not.equal(good.digest);
  });

  it('crash: every FLUSHED line names a block of the file with its CRC-32, each block once', () => {
    const f = path.join(dir, 'crash.img');
    fs.writeFileSync(f, Buffer.alloc(1 << 20));
    const out = execFileSync(guestio, ['crash', f, 't', '1', '5'], { encoding: 'utf8' });
    const lines = [...out.matchAll(/^FLUSHED t (\d+) ([0-9a-f]{8})$/gm)];
    expect(lines).to.have.length((1 << 20) / BLOCK_SIZE);
    expect(new Set(lines.map((m) => m[1])).size).to.equal(lines.length);
    const img = fs.readFileSync(f);
    for (const m of lines) {
      const blk = Number(m[1]);
      const crc = parseInt(m[2]!, 16);
      expect(crc32(img.subarray(blk * BLOCK_SIZE, (blk + 1) * BLOCK_SIZE)), `block ${blk}`).to.equal(crc);
      expect(crc32(expectedBlock(5n, blk, 1))).to.equal(crc);
    }
  });
});
