import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { MEMORY_FS_INLINE_READ_MAX, MEMORY_FS_INLINE_WRITE_MAX } from '../../core/block/memory-fs.js';
import { RawFileDisk } from './raw-disk.js';
import { RawDiskFormat } from './raw-format.js';
import { RawDiskError } from './errors.js';
import { skipUnlessCi } from '../../test/setup/environment.js';

const MiB = 1 << 20;

describe('plugins/raw-disk RawFileDisk', () => {
  let dir: string;
  let file: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rawdisk-'));
    file = path.join(dir, 'disk.img');
    fs.writeFileSync(file, Buffer.alloc(0));
    fs.truncateSync(file, 4 * MiB);
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('takes its size from fstat and reads/writes scatter-gather lists at offsets', async () => {
    const d = RawFileDisk.open({ path: file, readOnly: false });
    expect(d.size).to.equal(4n * BigInt(MiB));
    expect(d.blockSize).to.equal(512);
    const a = randomBytes(1000),
      b = randomBytes(24),
      cc = randomBytes(3072);
    await d.write(8192n, [a, b, cc]);
    const onDisk = fs.readFileSync(file).subarray(8192, 8192 + 4096);
    expect(Buffer.compare(onDisk, Buffer.concat([a, b, cc]))).to.equal(0);
    const x = new Uint8Array(7),
      y = new Uint8Array(4089);
    await d.read(8192n, [x, y]);
    expect(Buffer.compare(Buffer.concat([x, y]), onDisk)).to.equal(0);
    await d.flush();
    await d.close();
  });

  it('rejects ranges outside the disk, negative offsets and anything after close', async () => {
    const d = RawFileDisk.open({ path: file, readOnly: false });
    await expectError(d.read(4n * BigInt(MiB) - 511n, [new Uint8Array(512)]), 'OutOfRange');
    await expectError(d.write(-1n, [new Uint8Array(1)]), 'OutOfRange');
    await expectError(d.discard(1n << 62n, 1n << 62n), 'OutOfRange');
    await d.close();
    await expectError(d.read(0n, [new Uint8Array(512)]), 'Closed');
  });

  it('refuses writes, discard and write-zeroes when opened read-only', async () => {
    const d = RawFileDisk.open({ path: file, readOnly: true });
    expect(d.readOnly).to.equal(true);
    await expectError(d.write(0n, [new Uint8Array(512)]), 'ReadOnly');
    await expectError(d.discard(0n, 512n), 'ReadOnly');
    await expectError(d.writeZeroes(0n, 512n, true), 'ReadOnly');
    await d.flush(); // harmless
    await d.close();
  });

  it('reports a clear error for a missing file', () => {
    expect(() => RawFileDisk.open({ path: path.join(dir, 'nope.img'), readOnly: false })).to.throw(
      RawDiskError,
      /cannot open disk image/,
    );
  });

  it('discard punches holes in the host file (allocated blocks drop) and reads back zeros', async () => {
    fs.writeFileSync(file, randomBytes(4 * MiB));
    const d = RawFileDisk.open({ path: file, readOnly: false });
    await d.flush();
    const before = fs.statSync(file).blocks;
    await d.discard(BigInt(MiB), 2n * BigInt(MiB));
    const after = fs.statSync(file).blocks;
    expect(fs.statSync(file).size).to.equal(4 * MiB);
    expect(after).to.be.at.most(before - (2 * MiB) / 512 + 16);
    const back = new Uint8Array(4096);
    await d.read(BigInt(MiB) + 4096n, [back]);
    expect(back.every((v) => v === 0)).to.equal(true);
    await d.close();
  });

  it('write-zeroes zeroes the range with and without unmap', async () => {
    const data = randomBytes(4 * MiB);
    fs.writeFileSync(file, data);
    const d = RawFileDisk.open({ path: file, readOnly: false });
    await d.writeZeroes(4096n, 8192n, false);
    await d.writeZeroes(65536n, 65536n, true);
    await d.close();
    const now = fs.readFileSync(file);
    expect(now.subarray(4096, 12288).every((v) => v === 0)).to.equal(true);
    expect(now.subarray(65536, 131072).every((v) => v === 0)).to.equal(true);
    expect(Buffer.compare(now.subarray(0, 4096), data.subarray(0, 4096))).to.equal(0);
    expect(Buffer.compare(now.subarray(12288, 65536), data.subarray(12288, 65536))).to.equal(0);
    expect(Buffer.compare(now.subarray(131072), data.subarray(131072))).to.equal(0);
  });

  it('close() waits for I/O in flight: the write has ended, its bytes in the file', async () => {
    // a write long enough that a close() on another threadpool thread would end first if it did not wait
    fs.truncateSync(file, 64 * MiB);
    const d = RawFileDisk.open({ path: file, readOnly: false });
    const data = randomBytes(64 * MiB);
    let ended = false;
    const w = d.write(0n, [data]).then(() => {
      ended = true;
    });
    await d.close();
    expect(ended, 'close() resolved while the write was still in flight').to.equal(true);
    expect(Buffer.compare(fs.readFileSync(file), data)).to.equal(0);
    await w;
  });

  it('O_DIRECT: aligned I/O goes through bounce buffers, unaligned is refused', async function () {
    let d: RawFileDisk;
    try {
      d = RawFileDisk.open({ path: file, readOnly: false, direct: true });
    } catch (e) {
      skipUnlessCi(this, `O_DIRECT is refused for a file in ${os.tmpdir()}: ${(e as Error).message}`);
    }
    expect(d.blockSize).to.equal(4096);
    const data = randomBytes(8192);
    await d.write(4096n, [data.subarray(0, 100), data.subarray(100)]);
    const back = [new Uint8Array(5000), new Uint8Array(3192)];
    await d.read(4096n, back);
    expect(Buffer.compare(Buffer.concat(back), data)).to.equal(0);
    await expectError(d.read(512n, [new Uint8Array(4096)]), 'Unaligned');
    await d.close();
    expect(Buffer.compare(fs.readFileSync(file).subarray(4096, 12288), data)).to.equal(0);
  });

  it('RawDiskFormat opens through the DiskFormat interface and probes anything', async () => {
    const f = new RawDiskFormat();
    expect(f.name).to.equal('raw');
    expect(f.probe(new Uint8Array(512))).to.equal(true);
    const d = await f.open({ path: file, readOnly: true });
    expect(d.size).to.equal(4n * BigInt(MiB));
    await d.close();
  });
});

async function expectError(p: Promise<unknown>, kind: string): Promise<void> {
  try {
    await p;
  } catch (e) {
    expect(e).to.be.instanceOf(RawDiskError);
    expect((e as RawDiskError).kind).to.equal(kind);
    return;
  }
  expect.fail(`expected a ${kind} error`);
}

describe('plugins/raw-disk reads from the page cache (preadv2 RWF_NOWAIT)', () => {
  let dir: string;
  let file: string;
  let data: Buffer;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rawdisk-nowait-'));
    file = path.join(dir, 'disk.img');
    data = randomBytes(512 * 1024);
    fs.writeFileSync(file, data); // just written: in the page cache
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('answers cached scatter-gather reads without the pool, with the right bytes', async () => {
    const d = RawFileDisk.open({ path: file, readOnly: true });
    const x = new Uint8Array(7),
      y = new Uint8Array(4089),
      z = new Uint8Array(new ArrayBuffer(8192), 4096, 512);
    await d.read(12288n, [x, y, z]);
    expect(Buffer.compare(Buffer.concat([x, y, z]), data.subarray(12288, 12288 + 4608))).to.equal(0);
    expect(d.cacheHits).to.equal(1);
    await d.close();
  });

  it('larger reads and reads with noWaitReads off take the pool and read the same bytes', async () => {
    const d = RawFileDisk.open({ path: file, readOnly: true });
    const big = new Uint8Array(512 * 1024);
    await d.read(0n, [big]);
    expect(Buffer.compare(big, data)).to.equal(0);
    expect(d.cacheHits, 'over NOWAIT_READ_MAX').to.equal(0);
    d.noWaitReads = false;
    const small = new Uint8Array(4096);
    await d.read(4096n, [small]);
    expect(Buffer.compare(small, data.subarray(4096, 8192))).to.equal(0);
    expect(d.cacheHits).to.equal(0);
    await d.close();
  });

  it('an image on tmpfs (no RWF_NOWAIT there): reads up to 2 MiB are answered inline, larger ones by the pool', async () => {
    const shm = fs.mkdtempSync('/dev/shm/raw-disk-');
    try {
      const f = path.join(shm, 'disk.img');
      const whole = Buffer.concat([data, randomBytes(3 << 20)]);
      fs.writeFileSync(f, whole);
      const d = RawFileDisk.open({ path: f, readOnly: true });
      expect(d.inMemory).to.equal(true);
      const x = new Uint8Array(4096),
        y = new Uint8Array(512);
      await d.read(8192n, [x, y]);
      expect(Buffer.compare(Buffer.concat([x, y]), data.subarray(8192, 8192 + 4608))).to.equal(0);
      expect(d.cacheHits).to.equal(1);
      // A guest's 1 MiB O_DIRECT read: one request of 256 page buffers, one inline preadv into all of them.
      const pages = Array.from({ length: 256 }, () => new Uint8Array(4096));
      await d.read(4096n, pages);
      expect(Buffer.compare(Buffer.concat(pages), whole.subarray(4096, 4096 + (1 << 20)))).to.equal(0);
      expect(d.cacheHits, 'a 1 MiB scatter-gather read').to.equal(2);
      const two = new Uint8Array(MEMORY_FS_INLINE_READ_MAX);
      await d.read(512n, [two]);
      expect(Buffer.compare(two, whole.subarray(512, 512 + two.length))).to.equal(0);
      expect(d.cacheHits, 'MEMORY_FS_INLINE_READ_MAX bytes').to.equal(3);
      const big = new Uint8Array(MEMORY_FS_INLINE_READ_MAX + 4096);
      await d.read(0n, [big]);
      expect(Buffer.compare(big, whole.subarray(0, big.length))).to.equal(0);
      expect(d.cacheHits, 'over MEMORY_FS_INLINE_READ_MAX: the pool').to.equal(3);
      await d.close();
      const other = RawFileDisk.open({ path: file, readOnly: true });
      const tmpfs = [0x01021994, 0x858458f6].includes(Number(fs.statfsSync(dir).type));
      expect(other.inMemory, `a file in ${dir}`).to.equal(tmpfs);
      await other.close();
    } finally {
      fs.rmSync(shm, { recursive: true, force: true });
    }
  });

  it('an image on tmpfs: writes up to 2 MiB and flushes are done inline, larger writes by the pool, the same bytes', async () => {
    const shm = fs.mkdtempSync('/dev/shm/raw-disk-');
    try {
      const f = path.join(shm, 'disk.img');
      fs.writeFileSync(f, '');
      fs.truncateSync(f, 8 * MiB);
      const d = RawFileDisk.open({ path: f, readOnly: false });
      expect(d.inMemory).to.equal(true);
      const model = Buffer.alloc(8 * MiB);
      // A guest's 1 MiB O_DIRECT write: 256 page buffers, one inline pwritev.
      const pages = Array.from({ length: 256 }, () => randomBytes(4096));
      await d.write(4096n, pages);
      Buffer.concat(pages).copy(model, 4096);
      expect(d.inlineWrites, 'a 1 MiB scatter-gather write').to.equal(1);
      const two = randomBytes(MEMORY_FS_INLINE_WRITE_MAX);
      await d.write(2n * BigInt(MiB), [two]);
      two.copy(model, 2 * MiB);
      expect(d.inlineWrites, 'MEMORY_FS_INLINE_WRITE_MAX bytes').to.equal(2);
      const big = randomBytes(MEMORY_FS_INLINE_WRITE_MAX + 4096);
      await d.write(512n, [big.subarray(0, 4096), big.subarray(4096)]);
      big.copy(model, 512);
      expect(d.inlineWrites, 'over MEMORY_FS_INLINE_WRITE_MAX: the pool').to.equal(2);
      await d.flush();
      expect(d.inlineWrites, 'fdatasync').to.equal(3);
      await d.close();
      expect(Buffer.compare(fs.readFileSync(f), model)).to.equal(0);
      const ro = RawFileDisk.open({ path: f, readOnly: true });
      let err: unknown;
      await ro.write(0n, [new Uint8Array(512)]).catch((e: unknown) => (err = e));
      expect(err, 'a write to a read-only disk on tmpfs').to.be.instanceOf(RawDiskError);
      expect(ro.inlineWrites).to.equal(0);
      await ro.close();
    } finally {
      fs.rmSync(shm, { recursive: true, force: true });
    }
  });

  it('a read past the end of a file that shrank: cached part copied, the rest zero-filled by the pool path', async () => {
    const d = RawFileDisk.open({ path: file, readOnly: false });
    fs.truncateSync(file, 6144); // shrinks under the open disk (size stays as opened)
    const b = new Uint8Array(4096).fill(0xee);
    await d.read(4096n, [b]);
    expect(Buffer.compare(b.subarray(0, 2048), data.subarray(4096, 6144))).to.equal(0);
    expect(b.subarray(2048).every((v) => v === 0)).to.equal(true);
    expect(d.cacheHits).to.equal(0);
    await d.close();
  });
});
