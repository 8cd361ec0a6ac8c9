import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
  openSync,
  writeSync,
  closeSync,
  ftruncateSync,
} from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { convertImage } from './convert.js';
import { createQcow2 } from './create.js';
import { openQcow2 } from './open.js';
import { fillRandom, hasQemuImg, QEMU_MISSING, qemuImg, tempDir } from './testing.js';
import { skipUnlessCi } from '../../test/setup/environment.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const VMM = join(root, 'bin/vmm.js');

/** Runs `vmm image convert ...` through `sh -c` (for ulimit / unshare), with a watchdog only to end a hang. */
function shell(cmd: string): { status: number | null; stderr: string } {
  const r = spawnSync('sh', ['-c', cmd], { encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stderr: r.stderr };
}

const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** `vmm image convert` (issue 11 item 6): atomic output, cost of the data, backing opt-in, one-line errors. */
describe('qcow: vmm image convert is atomic, follows the data and names errors', function () {
  this.timeout(180_000);
  const t = tempDir('vmm-convert-');
  before(function () {
    if (!hasQemuImg) skipUnlessCi(this, QEMU_MISSING);
  });
  after(() => t.cleanup());

  /** Files in `dir` other than `keep`: a temporary file left behind shows up here. */
  const leftovers = (dir: string, keep: string[]): string[] => readdirSync(dir).filter((f) => !keep.includes(f));

  function rawWithData(path: string, bytes: number): void {
    writeFileSync(path, fillRandom(new Uint8Array(bytes), 7));
  }

  it('a bad compressed cluster: exit 1, one line, no output file and no temporary file', async () => {
    const dir = t.path('badc');
    mkdirSync(dir);
    const src = join(dir, 'src.raw');
    const data = Buffer.alloc(1 << 20);
    data.fill('compress me ');
    writeFileSync(src, data);
    const c = join(dir, 'c.qcow2');
    await convertImage({ src, dst: c, dstFormat: 'qcow2', compress: true });
    // Garble the bytes of the second compressed cluster.
    const img = await openQcow2({ path: c, readOnly: true });
    const m = await img.map.lookup(1);
    await img.close();
    expect(m.t).to.equal('compressed');
    const b = readFileSync(c);
    if (m.t === 'compressed') b.fill(0xff, m.extent.offset, m.extent.offset + 64);
    writeFileSync(c, b);
    const r = shell(`node ${q(VMM)} image convert -O raw ${q(c)} ${q(join(dir, 'out.raw'))}`);
    expect(r.status, r.stderr).to.equal(1);
    expect(r.stderr.trim().split('\n')).to.have.length(1);
    expect(r.stderr).to.match(/compressed cluster/);
    expect(leftovers(dir, ['src.raw', 'c.qcow2'])).to.deep.equal([]);
  });

  it('EFBIG (file size limit): one line, no "internal error", nothing left behind', () => {
    const dir = t.path('efbig');
    mkdirSync(dir);
    rawWithData(join(dir, 'src.raw'), 4 << 20);
    for (const fmt of ['raw', 'qcow2']) {
      // SIGXFSZ ignored, so the write past the limit fails with EFBIG instead of killing the process.
      const r = shell(
        `trap '' XFSZ; ulimit -f 2048; exec node ${q(VMM)} image convert -O ${fmt} ${q(join(dir, 'src.raw'))} ${q(join(dir, 'out'))}`,
      );
      expect(r.status, r.stderr).to.equal(1);
      expect(r.stderr).to.match(/EFBIG|too large/i);
      expect(r.stderr).to.not.match(/internal error|\n\s+at /);
      expect(r.stderr.trim().split('\n')).to.have.length(1);
      expect(leftovers(dir, ['src.raw']), fmt).to.deep.equal([]);
    }
  });

  it('ENOSPC on a small tmpfs: one line, nothing left behind', () => {
    const dir = t.path('enospc');
    mkdirSync(dir);
    const src = t.path('enospc-src.raw');
    rawWithData(src, 4 << 20);
    const r = shell(
      `unshare -m sh -c ${q(`mount -t tmpfs -o size=1m none ${q(dir)} && node ${q(VMM)} image convert -O qcow2 ${q(src)} ${q(join(dir, 'out.qcow2'))}; s=$?; ls -A ${q(dir)} >&2; exit $s`)}`,
    );
    expect(r.status, r.stderr).to.equal(1);
    expect(r.stderr).to.match(/ENOSPC|no space left/i);
    expect(r.stderr).to.not.match(/internal error|\n\s+at /);
    expect(r.stderr.trim().split('\n'), 'one error line and an empty folder listing').to.have.length(1);
  });

  for (const sig of ['SIGKILL', 'SIGTERM'] as const)
    it(`${sig} in the middle leaves no file under the final name`, async () => {
      const dir = t.path(`kill-${sig}`);
      mkdirSync(dir);
      const src = join(dir, 'src.raw');
      const fd = openSync(src, 'w');
      const mib = fillRandom(new Uint8Array(1 << 20), 3);
      for (let i = 0; i < 192; i++) writeSync(fd, mib);
      closeSync(fd);
      const dst = join(dir, 'out.qcow2');
      const p = spawn(process.execPath, [VMM, 'image', 'convert', src, dst], { stdio: 'ignore' });
      // Wait (polling) until the temporary output exists and has data, then kill.
      for (;;) {
        const tmp = readdirSync(dir).find((f) => f.endsWith('.tmp'));
        if (tmp && statSync(join(dir, tmp)).size > 4 << 20) break;
        if (p.exitCode !== null) throw new Error('convert ended before it could be killed');
        await new Promise((r) => setTimeout(r, 5));
      }
      const exited = new Promise<number | null>((r) => p.once('exit', (code) => r(code)));
      p.kill(sig);
      const code = await exited;
      expect(existsSync(dst), 'a half-written file under the final name').to.equal(false);
      if (sig === 'SIGTERM') {
        expect(code).to.equal(143);
        expect(leftovers(dir, ['src.raw']), 'SIGTERM removes the temporary file').to.deep.equal([]);
      }
    });

  it('a 2^50-byte disk with three clusters of data converts by its data, not its size', async () => {
    const src = t.path('huge.qcow2');
    await createQcow2({ path: src, size: 2 ** 50 });
    const img = await openQcow2({ path: src, readOnly: false });
    const pieces: Array<[number, number]> = [
      [0, 0x11],
      [2 ** 40, 0x22],
      [2 ** 50 - 65536, 0x33],
    ];
    for (const [at, v] of pieces) await img.write(BigInt(at), [new Uint8Array(65536).fill(v)]);
    await img.close();
    const dst = t.path('huge-out.qcow2');
    const stats = await convertImage({ src, dst, dstFormat: 'qcow2' });
    expect(stats.extents).to.equal(3);
    expect(stats.bytesRead).to.equal(3 * 65536);
    const out = await openQcow2({ path: dst, readOnly: true });
    try {
      for (const [at, v] of pieces) {
        const got = new Uint8Array(65536);
        await out.read(BigInt(at), [got]);
        expect(got.every((x) => x === v)).to.equal(true);
      }
    } finally {
      await out.close();
    }
    expect(qemuImg(['check', dst]).status).to.equal(0);
  });

  it('a sparse raw source: only its data extents are read (SEEK_DATA)', async () => {
    const src = t.path('sparse.raw');
    const fd = openSync(src, 'w');
    ftruncateSync(fd, 1 << 30);
    writeSync(fd, new Uint8Array(4096).fill(0x44), 0, 4096, 300 << 20);
    closeSync(fd);
    const stats = await convertImage({ src, dst: t.path('sparse.qcow2'), dstFormat: 'qcow2' });
    expect(stats.bytesRead).to.be.at.most(65536);
    expect(qemuImg(['compare', '-f', 'raw', '-F', 'qcow2', src, t.path('sparse.qcow2')]).status).to.equal(0);
  });

  it('a backing file named inside the image (/etc/shadow) is refused unless --backing', async () => {
    const dir = t.path('shadow');
    mkdirSync(dir);
    const ov = join(dir, 'ov.qcow2');
    await createQcow2({ path: ov, size: 1 << 20, backingFile: '/etc/shadow', backingFormat: 'raw' });
    const r = shell(`node ${q(VMM)} image convert -O raw ${q(ov)} ${q(join(dir, 'out.raw'))}`);
    expect(r.status, r.stderr).to.equal(1);
    expect(r.stderr).to.match(/names a backing file \("\/etc\/shadow"\); convert follows it only with --backing/);
    expect(leftovers(dir, ['ov.qcow2'])).to.deep.equal([]);
    // Asked for: a harmless base is followed and flattened.
    const base = join(dir, 'base.raw');
    writeFileSync(base, Buffer.alloc(1 << 20, 0x61));
    const ov2 = join(dir, 'ov2.qcow2');
    await createQcow2({ path: ov2, size: 1 << 20, backingFile: 'base.raw', backingFormat: 'raw' });
    const ok = shell(`node ${q(VMM)} image convert --backing -O raw ${q(ov2)} ${q(join(dir, 'flat.raw'))}`);
    expect(ok.status, ok.stderr).to.equal(0);
    expect(readFileSync(join(dir, 'flat.raw')).equals(readFileSync(base))).to.equal(true);
  });

  it('an existing output is never replaced', async () => {
    const src = t.path('small.raw');
    rawWithData(src, 65536);
    const dst = t.path('exists.raw');
    writeFileSync(dst, 'keep me');
    const err = await convertImage({ src, dst, dstFormat: 'raw' }).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err?.message).to.match(/already exists/);
    expect(readFileSync(dst, 'utf8')).to.equal('keep me');
  });
});
