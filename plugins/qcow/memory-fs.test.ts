import { expect } from 'chai';
import { mkdtempSync, rmSync, statfsSync } from 'node:fs';
import { join } from 'node:path';
import { openQcow2 } from './open.js';
import { QEMU_MISSING, hasQemuImg, qemuImg, qemuIo, tempDir } from './testing.js';
import { skipUnlessCi } from '../../test/setup/environment.js';

/** Images on tmpfs (the bench keeps them there in the sandbox) are read on the calling thread, with the same bytes. */
describe('qcow: an image on tmpfs', () => {
  const t = tempDir();
  const shm = mkdtempSync('/dev/shm/qcow-test-');
  before(function () {
    if (!hasQemuImg) skipUnlessCi(this, QEMU_MISSING);
  });
  after(() => {
    t.cleanup();
    rmSync(shm, { recursive: true, force: true });
  });

  it('reads small and large ranges inline or through the pool with the bytes qemu-io wrote', async () => {
    const f = join(shm, 'a.qcow2');
    expect(qemuImg(['create', '-q', '-f', 'qcow2', f, '4M']).status).to.equal(0);
    qemuIo(f, ['write -P 0x5a 65536 4096', 'write -P 0xa5 1M 512k']);
    const img = await openQcow2({ path: f, readOnly: true });
    try {
      expect(img.file.inMemory).to.equal(true);
      const small = new Uint8Array(8192);
      await img.read(61440n, [small]);
      expect([small[0], small[4095], small[4096], small[8191]]).to.deep.equal([0, 0, 0x5a, 0x5a]);
      const large = new Uint8Array(1 << 20);
      await img.read(BigInt(1 << 20) - 262144n, [large]);
      expect([large[262143], large[262144], large[786431], large[786432]]).to.deep.equal([0, 0xa5, 0xa5, 0]);
    } finally {
      await img.close();
    }
    const g = t.path('b.qcow2');
    expect(qemuImg(['create', '-q', '-f', 'qcow2', g, '1M']).status).to.equal(0);
    const other = await openQcow2({ path: g, readOnly: true });
    const tmpfs = [0x01021994, 0x858458f6].includes(Number(statfsSync(t.dir).type));
    expect(other.file.inMemory, `an image in ${t.dir}`).to.equal(tmpfs);
    await other.close();
  });
});
