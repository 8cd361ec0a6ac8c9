import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { copyFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { checkImage } from './check.js';
import { createQcow2, type CreateOptions } from './create.js';
import { verifySector } from './crash-writer.js';
import { openQcow2 } from './open.js';
import { hasQemuImg, qemuCheck, tempDir } from './testing.js';
import { skipUnlessCi } from '../../test/setup/environment.js';

const writer = fileURLToPath(new URL('./crash-writer.js', import.meta.url));

/** Runs the writer until it has done some work, then SIGKILLs it after `delayMs`. */
function writeThenKill(path: string, seed: number, delayMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [writer, path, String(seed)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    const guard = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) setTimeout(() => child.kill('SIGKILL'), delayMs);
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(guard);
      if (signal !== 'SIGKILL') reject(new Error(`writer exited (${code}) before the kill: ${err}`));
      else resolve(err);
    });
  });
}

async function expectStampsValid(path: string): Promise<void> {
  const img = await openQcow2({ path, readOnly: true });
  try {
    const all = new Uint8Array(img.virtualSize);
    await img.read(0n, [all]);
    const bad: string[] = [];
    for (let s = 0; s < all.length / 512; s++) {
      const why = verifySector(all.subarray(s * 512, s * 512 + 512), s);
      if (why) bad.push(why);
    }
    expect(bad.slice(0, 5)).to.deep.equal([]);
  } finally {
    await img.close();
  }
}

/** After SIGKILL mid-workload: leaks at most, never corruption; repaired images read right. */
describe('qcow: SIGKILL during writes', function () {
  this.timeout(60_000);
  const t = tempDir();
  before(function () {
    if (!hasQemuImg) skipUnlessCi(this, 'qemu-img is not installed (Debian qemu-utils)');
  });
  after(() => t.cleanup());

  const cases: Array<Omit<CreateOptions, 'path'> & { delay: number }> = [
    { size: 4 << 20, clusterSize: 4096, refcountBits: 16, delay: 150 },
    { size: 2 << 20, clusterSize: 512, refcountBits: 64, delay: 400 },
    { size: 8 << 20, clusterSize: 65536, refcountBits: 16, version: 2, delay: 250 },
  ];
  for (const [n, c] of cases.entries()) {
    it(`cluster ${c.clusterSize}, refcount ${c.refcountBits}, v${c.version ?? 3}: killed after ${c.delay} ms`, async () => {
      const f = t.path(`k${n}.qcow2`);
      await createQcow2({ path: f, ...c });
      const stderr = await writeThenKill(f, 1000 + n, c.delay);
      expect(stderr).to.equal('');

      const q = qemuCheck(f);
      expect(q.corruptions, q.raw).to.equal(0);
      expect(q.status, q.raw).to.be.oneOf([0, 3]);
      const img = await openQcow2({ path: f, readOnly: true, forCheck: true });
      const ours = await checkImage(img);
      await img.close();
      expect(ours.corruptions, ours.messages.slice(0, 5).join('\n')).to.equal(0);
      expect(ours.leaks).to.equal(q.leaks);
      await expectStampsValid(f);

      // Repair by qemu-img ...
      const a = t.path(`k${n}-qemu.qcow2`);
      copyFileSync(f, a);
      expect(qemuCheck(a, 'leaks').status).to.equal(0);
      const qa = qemuCheck(a);
      expect([qa.status, qa.leaks, qa.corruptions]).to.deep.equal([0, 0, 0]);
      await expectStampsValid(a);

      // ... and by our own check --repair.
      const b = t.path(`k${n}-ours.qcow2`);
      copyFileSync(f, b);
      const rw = await openQcow2({ path: b, readOnly: false, forCheck: true });
      const fixed = await checkImage(rw, { repair: 'leaks' });
      await rw.close();
      expect(fixed.leaksFixed).to.equal(fixed.leaks);
      const qb = qemuCheck(b);
      expect([qb.status, qb.leaks, qb.corruptions], qb.raw).to.deep.equal([0, 0, 0]);
      await expectStampsValid(b);
    });
  }
});
