import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { MEMORY_FS_INLINE_WRITE_MAX } from '../../core/block/memory-fs.js';
import { createQcow2 } from './create.js';
import { openQcow2 } from './open.js';
import { QEMU_MISSING, fillRandom, hasQemuImg, qemuCheck, qemuImg, rng, randInt, tempDir } from './testing.js';
import { skipUnlessCi } from '../../test/setup/environment.js';

/** Cuts `data` into views of odd sizes (a guest's scatter-gather list of pages and pieces of pages). */
function scatter(data: Uint8Array, seed: number): Uint8Array[] {
  const r = rng(seed);
  const out: Uint8Array[] = [];
  for (let p = 0; p < data.length;) {
    const n = Math.min(data.length - p, [512, 4096, 1536, 4096, 8192, 4096][randInt(r, 0, 6)]!);
    // Each piece in memory of its own (as guest pages are), copied from the model.
    const own = new Uint8Array(new ArrayBuffer(n + 64), 32, n);
    own.set(data.subarray(p, p + n));
    out.push(own);
    p += n;
  }
  return out;
}

/**
 * The write path: the guest's buffers go to the file scatter-gather (no flat copy), on tmpfs on the calling
 * thread; what they write reads back the same, in this process and in qemu-img's eyes.
 */
describe('qcow: write paths', () => {
  const t = tempDir();
  const shm = mkdtempSync('/dev/shm/qcow-write-');
  after(() => {
    t.cleanup();
    rmSync(shm, { recursive: true, force: true });
  });

  for (const [where, cluster] of [
    ['tmpfs', 65536],
    ['tmpfs', 4096],
    ['the temp folder', 65536],
  ] as const) {
    it(`scatter-gather writes on ${where}, ${cluster}-byte clusters: allocating, copy-on-write of partial clusters, in place; the bytes read back and the image checks clean`, async () => {
      const size = 8 << 20;
      const f = where === 'tmpfs' ? join(shm, `w${cluster}.qcow2`) : t.path(`w${cluster}.qcow2`);
      await createQcow2({ path: f, size, clusterSize: cluster });
      const model = new Uint8Array(size);
      const img = await openQcow2({ path: f, readOnly: false });
      const r = rng(cluster);
      // [offset, length]: a fresh 1 MiB run, partial clusters at both ends, an overwrite of what is allocated,
      // one piece across allocated and fresh clusters, then random ones.
      const writes: Array<[number, number]> = [
        [0, 1 << 20],
        [(2 << 20) + 512, 3 * cluster + 1024],
        [4096, 8192],
        [(1 << 20) - 4096, 3 * cluster],
      ];
      for (let i = 0; i < 24; i++) {
        const off = randInt(r, 0, size / 512 - 1) * 512;
        writes.push([off, Math.min(size - off, randInt(r, 1, 512) * 512)]);
      }
      let seed = 1;
      for (const [off, len] of writes) {
        const data = fillRandom(new Uint8Array(len), seed++);
        model.set(data, off);
        await img.write(BigInt(off), scatter(data, seed));
      }
      const back = new Uint8Array(size);
      await img.readAt(0, back);
      expect(Buffer.compare(back, model), 'bytes read back before the flush').to.equal(0);
      if (where === 'tmpfs') {
        expect(img.file.inMemory).to.equal(true);
        expect(img.file.inlineWrites, 'writes done on the calling thread').to.be.greaterThan(writes.length);
      }
      await img.flush();
      await img.close();
      const again = await openQcow2({ path: f, readOnly: true });
      const reread = new Uint8Array(size);
      await again.readAt(0, reread);
      await again.close();
      expect(Buffer.compare(reread, model), 'bytes read back after reopening').to.equal(0);
      if (hasQemuImg) {
        const c = qemuCheck(f);
        expect(c.corruptions + c.leaks, c.raw).to.equal(0);
        const raw = `${f}.raw`;
        expect(qemuImg(['convert', '-O', 'raw', f, raw]).status).to.equal(0);
        expect(Buffer.compare(readFileSync(raw), model), "qemu-img's view of the bytes").to.equal(0);
        rmSync(raw);
      }
    });
  }

  it('on tmpfs a write over MEMORY_FS_INLINE_WRITE_MAX goes through the pool, with the same result', async function () {
    if (!hasQemuImg) skipUnlessCi(this, QEMU_MISSING);
    const f = join(shm, 'big.qcow2');
    await createQcow2({ path: f, size: 8 << 20 });
    const img = await openQcow2({ path: f, readOnly: false });
    const data = fillRandom(new Uint8Array(MEMORY_FS_INLINE_WRITE_MAX + 65536), 7);
    await img.write(0n, [data]); // allocates: refcount and L2 work first, then the data run
    const before = img.file.inlineWrites;
    await img.write(0n, scatter(data, 3)); // in place now: one run over the limit
    expect(img.file.inlineWrites - before, 'inline calls for a write over the limit').to.equal(0);
    const back = new Uint8Array(data.length);
    await img.readAt(0, back);
    expect(Buffer.compare(back, data)).to.equal(0);
    await img.close();
    expect(qemuCheck(f).corruptions).to.equal(0);
  });
});
