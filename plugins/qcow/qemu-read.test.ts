import { expect } from 'chai';
import { readFileSync, writeFileSync } from 'node:fs';
import { checkImage } from './check.js';
import { QcowError } from './errors.js';
import { openQcow2 } from './open.js';
import { QEMU_MISSING, hasQemuImg, qemuImg, qemuIo, randInt, rng, tempDir } from './testing.js';
import { skipUnlessCi } from '../../test/setup/environment.js';

/** Images made by qemu-img / qemu-io read byte-identical to `qemu-img convert -O raw`. */
describe('qcow: reading images made by qemu-img', function () {
  this.timeout(60_000);
  const t = tempDir();
  before(function () {
    if (!hasQemuImg) skipUnlessCi(this, QEMU_MISSING);
  });
  after(() => t.cleanup());

  async function expectSameAsQemu(file: string, allowBacking = false): Promise<void> {
    const raw = file + '.raw';
    const r = qemuImg(['convert', '-O', 'raw', file, raw]);
    expect(r.status, r.stderr).to.equal(0);
    const want = readFileSync(raw);
    const img = await openQcow2({ path: file, readOnly: true, allowBacking });
    try {
      const got = new Uint8Array(want.length);
      // Odd-sized reads at odd offsets exercise partial clusters and merging.
      for (let p = 0; p < got.length;) {
        const n = Math.min(got.length - p, 777 * 512 + 4096);
        await img.read(BigInt(p), [got.subarray(p, p + n)]);
        p += n;
      }
      expect(Buffer.from(got).equals(want), `${file} differs from qemu-img convert output`).to.equal(true);
    } finally {
      await img.close();
    }
  }

  /** A random qemu-io workload: pattern writes, zero writes (v3), discards, compressed writes. */
  function workload(seed: number, size: number, cs: number, v3: boolean): string[] {
    const r = rng(seed);
    const cmds: string[] = [];
    // Compressed writes only go to unallocated clusters: do them first, to distinct clusters.
    const clusters = size / cs;
    for (let c = randInt(r, 0, 3); c < clusters; c += randInt(r, 2, Math.max(3, clusters / 4))) {
      cmds.push(`write -c -P ${randInt(r, 1, 255)} ${c * cs} ${cs}`);
    }
    for (let i = 0; i < 24; i++) {
      const off = randInt(r, 0, size / 512) * 512;
      const len = Math.min(size - off, randInt(r, 1, Math.max(2, (4 * cs) / 512)) * 512);
      const k = r();
      if (k < 0.6) cmds.push(`write -P ${randInt(r, 1, 255)} ${off} ${len}`);
      else if (k < 0.75 && v3) cmds.push(`write -z ${off} ${len}`);
      else cmds.push(`discard ${off} ${len}`);
    }
    return cmds;
  }

  const configs: Array<{ cs: number; bits: number; compat: '0.10' | '1.1'; size: number }> = [
    { cs: 512, bits: 1, compat: '1.1', size: 1 << 20 },
    { cs: 4096, bits: 16, compat: '0.10', size: 4 << 20 },
    { cs: 4096, bits: 64, compat: '1.1', size: 4 << 20 },
    { cs: 65536, bits: 4, compat: '1.1', size: 16 << 20 },
    { cs: 65536, bits: 32, compat: '1.1', size: 16 << 20 },
    { cs: 2 << 20, bits: 8, compat: '1.1', size: 32 << 20 },
  ];
  for (const [n, c] of configs.entries()) {
    it(`cluster ${c.cs}, refcount_bits ${c.bits}, compat ${c.compat}: writes, write -z, discards, compressed writes`, async () => {
      const f = t.path(`img${n}.qcow2`);
      expect(
        qemuImg([
          'create',
          '-q',
          '-f',
          'qcow2',
          '-o',
          `cluster_size=${c.cs},refcount_bits=${c.bits},compat=${c.compat}`,
          f,
          String(c.size),
        ]).status,
      ).to.equal(0);
      qemuIo(f, workload(n + 1, c.size, c.cs, c.compat === '1.1'));
      await expectSameAsQemu(f);
      // Our checker agrees that qemu's refcounts are exact (validates every refcount width).
      const img = await openQcow2({ path: f, readOnly: true });
      const rep = await checkImage(img);
      await img.close();
      expect(rep.corruptions, rep.messages.join('\n')).to.equal(0);
      expect(rep.leaks, rep.messages.join('\n')).to.equal(0);
    });
  }

  it('qemu-img convert -c (zlib compressed clusters)', async () => {
    const src = t.path('c.raw');
    const r = rng(7);
    const data = Buffer.alloc(3 << 20);
    for (let i = 0; i < data.length; i += 4096) data.fill(i % 3 === 0 ? 0 : `text ${i} `, i, i + 4096);
    for (let i = 2 << 20; i < (2 << 20) + 100_000; i++) data[i] = randInt(r, 0, 256); // incompressible run
    writeFileSync(src, data);
    const f = t.path('c.qcow2');
    expect(qemuImg(['convert', '-c', '-O', 'qcow2', '-o', 'cluster_size=16k', src, f]).status).to.equal(0);
    await expectSameAsQemu(f);
  });

  it('backing chains: qcow2 over qcow2 over raw, partial overlay writes, zero clusters hiding backing data', async () => {
    const base = t.path('base.raw');
    writeFileSync(base, Buffer.alloc(2 << 20, 0x5a));
    const mid = t.path('mid.qcow2');
    const top = t.path('top.qcow2');
    expect(
      qemuImg(['create', '-q', '-f', 'qcow2', '-b', 'base.raw', '-F', 'raw', '-o', 'cluster_size=4k', mid, '3M'])
        .status,
    ).to.equal(0);
    qemuIo(mid, ['write -P 0x11 4096 1000', 'write -P 0x22 100000 300000', 'write -z 512k 64k']);
    expect(
      qemuImg(['create', '-q', '-f', 'qcow2', '-b', 'mid.qcow2', '-F', 'qcow2', '-o', 'cluster_size=64k', top]).status,
    ).to.equal(0);
    qemuIo(top, ['write -P 0x33 70000 512', 'discard 1M 128k', 'write -z 2M 64k']);
    await expectSameAsQemu(top, true);
  });

  it('refuses to follow a backing file unless allowed', async () => {
    const base = t.path('b2.qcow2');
    const top = t.path('t2.qcow2');
    qemuImg(['create', '-q', '-f', 'qcow2', base, '1M']);
    qemuImg(['create', '-q', '-f', 'qcow2', '-b', 'b2.qcow2', '-F', 'qcow2', top]);
    const err = await openQcow2({ path: top, readOnly: true }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(QcowError);
    expect((err as QcowError).kind).to.equal('Backing');
  });

  it('detects a backing loop', async () => {
    const a = t.path('la.qcow2');
    const b = t.path('lb.qcow2');
    qemuImg(['create', '-q', '-f', 'qcow2', a, '1M']);
    qemuImg(['create', '-q', '-f', 'qcow2', '-b', 'la.qcow2', '-F', 'qcow2', b]);
    // Point a at b: qemu-img rebase -u rewrites the header without opening the chain.
    expect(qemuImg(['rebase', '-u', '-f', 'qcow2', '-b', 'lb.qcow2', '-F', 'qcow2', a]).status).to.equal(0);
    const err = await openQcow2({ path: b, readOnly: true, allowBacking: true }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((err as QcowError).kind).to.equal('Backing');
    expect((err as Error).message).to.match(/loop/);
  });
});
void QEMU_MISSING;
