import { expect } from 'chai';
import { readFileSync, writeFileSync } from 'node:fs';
import { checkImage } from './check.js';
import { convertImage } from './convert.js';
import { createQcow2, type CreateOptions } from './create.js';
import { openQcow2 } from './open.js';
import { fillRandom, hasQemuImg, qemuCheck, qemuImg, qemuIo, randInt, rng, tempDir } from './testing.js';
import { skipUnlessCi } from '../../test/setup/environment.js';

/** Images written by us pass `qemu-img check` (no errors, no leaks) and equal the expected bytes. */
describe('qcow: images written by us, checked by qemu-img', function () {
  this.timeout(60_000);
  const t = tempDir();
  before(function () {
    if (!hasQemuImg) skipUnlessCi(this, 'qemu-img is not installed (Debian qemu-utils)');
  });
  after(() => t.cleanup());

  /**
   * Random writes, overwrites, discards and zero writes against a model of the disk.
   * `backing` is the backing file's content (what unallocated clusters show).
   */
  async function workload(
    file: string,
    seed: number,
    model: Uint8Array,
    backing: Uint8Array | undefined,
    ops = 120,
  ): Promise<void> {
    const img = await openQcow2({ path: file, readOnly: false, allowBacking: true });
    const size = model.length;
    const cs = img.cs;
    const v3 = img.header.version === 3;
    const r = rng(seed);
    try {
      for (let i = 0; i < ops; i++) {
        const off = randInt(r, 0, size / 512) * 512 + (r() < 0.2 ? randInt(r, 1, 511) : 0);
        const len = Math.min(size - off, randInt(r, 1, 3 * cs + 7));
        const k = r();
        if (k < 0.55) {
          const d = fillRandom(new Uint8Array(len), randInt(r, 1, 2 ** 31));
          // Sometimes as scattered buffers (virtio descriptor chains).
          const cut = randInt(r, 0, len);
          await img.write(BigInt(off), r() < 0.3 ? [d.subarray(0, cut), d.subarray(cut)] : [d]);
          model.set(d, off);
        } else if (k < 0.75) {
          await img.discard(BigInt(off), BigInt(len));
          // Whole clusters only: they read as zero (v3 or no backing) or show the backing again (v2).
          const first = Math.ceil(off / cs);
          let end = Math.floor((off + len) / cs);
          if (off + len === size && size % cs !== 0) end++;
          for (let c = first; c < end; c++) {
            const s = c * cs;
            const e = Math.min(size, s + cs);
            if (!v3 && backing) model.set(backing.subarray(s, e), s);
            else model.fill(0, s, e);
          }
        } else if (k < 0.92) {
          await img.writeZeroes(BigInt(off), BigInt(len), r() < 0.5);
          model.fill(0, off, off + len);
        } else {
          await img.flush();
        }
        if (i % 40 === 39) {
          const got = new Uint8Array(size);
          await img.read(0n, [got]);
          expect(Buffer.from(got).equals(Buffer.from(model)), `mismatch after op ${i}`).to.equal(true);
        }
      }
      const rep = await checkImage(img);
      expect(rep.corruptions, rep.messages.slice(0, 5).join('\n')).to.equal(0);
    } finally {
      await img.close();
    }
  }

  function expectQemuHappy(file: string, model: Uint8Array): void {
    const c = qemuCheck(file);
    expect(c.status, c.raw).to.equal(0);
    expect(c.corruptions, c.raw).to.equal(0);
    expect(c.leaks, c.raw).to.equal(0);
    const raw = file + '.expected';
    writeFileSync(raw, model);
    const cmp = qemuImg(['compare', '-f', 'qcow2', '-F', 'raw', file, raw]);
    expect(cmp.status, cmp.stdout + cmp.stderr).to.equal(0);
  }

  const configs: Array<Omit<CreateOptions, 'path'>> = [
    { size: 1 << 20, clusterSize: 512, refcountBits: 64 }, // refcount table grows several times
    { size: 3 * 1024 * 1024 + 1536, clusterSize: 4096, refcountBits: 1 }, // size not cluster aligned
    { size: 8 << 20, clusterSize: 65536, refcountBits: 16, version: 2 },
    { size: 8 << 20, clusterSize: 65536, refcountBits: 8 },
    { size: 12 << 20, clusterSize: 2 << 20, refcountBits: 32 },
  ];
  for (const [n, c] of configs.entries()) {
    it(`our create + random I/O: cluster ${c.clusterSize}, refcount ${c.refcountBits}, v${c.version ?? 3}, size ${c.size}`, async () => {
      const f = t.path(`w${n}.qcow2`);
      await createQcow2({ path: f, ...c });
      expectQemuHappy(f, new Uint8Array(Math.ceil(c.size / 512) * 512));
      const model = new Uint8Array(Math.ceil(c.size / 512) * 512);
      await workload(f, 100 + n, model, undefined);
      expectQemuHappy(f, model);
      // Reopen and keep going: state on disk is complete.
      await workload(f, 200 + n, model, undefined, 40);
      expectQemuHappy(f, model);
    });
  }

  it('fills a disk with 512-byte clusters and 64-bit refcounts: the refcount table moves and grows', async () => {
    const f = t.path('grow.qcow2');
    await createQcow2({ path: f, size: 3 << 20, clusterSize: 512, refcountBits: 64 });
    const before = await openQcow2({ path: f, readOnly: true });
    const rt0 = before.refs.tableLocation;
    await before.close();
    const model = fillRandom(new Uint8Array(3 << 20), 3);
    const img = await openQcow2({ path: f, readOnly: false });
    for (let p = 0; p < model.length; p += 256 * 1024) await img.write(BigInt(p), [model.subarray(p, p + 256 * 1024)]);
    const rt1 = img.refs.tableLocation;
    await img.close();
    expect(rt1.clusters).to.be.greaterThan(rt0.clusters);
    expect(rt1.offset).to.not.equal(rt0.offset);
    expectQemuHappy(f, model);
  });

  it('writes into a qemu-made image with zero clusters and compressed clusters (COW of compressed data)', async () => {
    const f = t.path('q.qcow2');
    qemuImg(['create', '-q', '-f', 'qcow2', '-o', 'cluster_size=4k', f, '2M']);
    qemuIo(f, [
      'write -c -P 0x41 0 4k',
      'write -c -P 0x42 8k 4k',
      'write -P 0x43 64k 256k',
      'write -z 128k 8k',
      'write -z -u 200k 4k',
    ]);
    const raw = f + '.raw';
    qemuImg(['convert', '-O', 'raw', f, raw]);
    const model = new Uint8Array(readFileSync(raw));
    await workload(f, 5, model, undefined, 150);
    expectQemuHappy(f, model);
  });

  for (const version of [2, 3] as const) {
    it(`over a backing file (v${version}): partial writes copy the rest from the backing file`, async () => {
      const base = t.path(`base${version}.qcow2`);
      qemuImg(['create', '-q', '-f', 'qcow2', '-o', 'cluster_size=4k', base, '4M']);
      qemuIo(base, ['write -P 0x77 0 4M', 'write -P 0x12 1M 100k', 'discard 3M 64k']);
      const baseRaw = base + '.raw';
      qemuImg(['convert', '-O', 'raw', base, baseRaw]);
      const backing = new Uint8Array(readFileSync(baseRaw));
      const top = t.path(`top${version}.qcow2`);
      await createQcow2({
        path: top,
        size: 4 << 20,
        clusterSize: 16384,
        version,
        refcountBits: 16,
        backingFile: `base${version}.qcow2`,
        backingFormat: 'qcow2',
      });
      const model = backing.slice();
      await workload(top, 40 + version, model, backing, 150);
      const c = qemuCheck(top);
      expect(c.status, c.raw).to.equal(0);
      writeFileSync(top + '.expected', model);
      const cmp = qemuImg(['compare', '-f', 'qcow2', '-F', 'raw', top, top + '.expected']);
      expect(cmp.status, cmp.stdout + cmp.stderr).to.equal(0);
    });
  }

  it('convert -c writes compressed clusters qemu reads back; convert to raw matches', async () => {
    const src = t.path('conv.raw');
    const data = Buffer.alloc(5 << 20);
    const r = rng(9);
    for (let i = 0; i < data.length; i += 65536) {
      if (r() < 0.3) continue; // zero clusters stay unallocated
      if (r() < 0.7) data.fill(`block ${i} `, i, i + 65536);
      else for (let j = i; j < i + 65536; j++) data[j] = randInt(r, 0, 256);
    }
    writeFileSync(src, data);
    for (const [name, bits] of [
      ['c16.qcow2', 16],
      ['c1.qcow2', 1],
    ] as const) {
      const dst = t.path(name);
      await convertImage({ src, dst, dstFormat: 'qcow2', compress: true, refcountBits: bits });
      expectQemuHappy(dst, data);
      const info = qemuImg(['check', dst]);
      expect(info.stdout).to.match(/compressed clusters/);
      expect(info.stdout).not.to.match(/ 0\.00% compressed/);
      const back = t.path(name + '.raw');
      await convertImage({ src: dst, dst: back, dstFormat: 'raw' });
      expect(readFileSync(back).equals(data)).to.equal(true);
    }
  });
});
