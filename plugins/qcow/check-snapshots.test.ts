import { expect } from 'chai';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import sinon from 'sinon';
import { hasQemuImg, imageCli, QEMU_MISSING, qemuCheck, qemuImg, qemuIo, tempDir } from './testing.js';
import { skipUnlessCi } from '../../test/setup/environment.js';

/**
 * `vmm image check` counts what qemu-img counts (issue 11 item 2): internal snapshots' L1/L2
 * tables and clusters, the snapshot table, persistent bitmaps. Before, `-r leaks` freed every
 * snapshot cluster as a "leak" and the snapshot then read EIO.
 */
describe('qcow: check and repair of images with internal snapshots and bitmaps', function () {
  this.timeout(60_000);
  const t = tempDir('vmm-snap-');
  before(function () {
    if (!hasQemuImg) skipUnlessCi(this, QEMU_MISSING);
  });
  let out: string;
  let stubs: sinon.SinonStub[] = [];
  beforeEach(() => {
    out = '';
    const grab = (s: string | Uint8Array): boolean => ((out += String(s)), true);
    stubs = [sinon.stub(process.stdout, 'write').callsFake(grab), sinon.stub(process.stderr, 'write').callsFake(grab)];
  });
  afterEach(() => stubs.forEach((s) => s.restore()));
  after(() => t.cleanup());

  const vmm = imageCli;

  /** 4 MiB image, 64 KiB clusters: s1 holds 0xaa in the first 256 KiB, the active disk 0xbb over half of it. */
  function withSnapshots(name: string, extra: string[] = []): string {
    const f = t.path(name);
    expect(qemuImg(['create', '-f', 'qcow2', ...extra, f, '4M']).status).to.equal(0);
    qemuIo(f, ['write -P 0xaa 0 256k', 'write -P 0x11 1M 64k']);
    expect(qemuImg(['snapshot', '-c', 's1', f]).status).to.equal(0);
    qemuIo(f, ['write -P 0xbb 0 128k', 'write -P 0x22 2M 64k']);
    expect(qemuImg(['snapshot', '-c', 's2', f]).status).to.equal(0);
    qemuIo(f, ['write -P 0xcc 64k 64k']);
    return f;
  }

  function expectSnapshotsIntact(f: string): void {
    const c = qemuCheck(f);
    expect(c.status, c.raw).to.equal(0);
    const copy = f + '.applied';
    copyFileSync(f, copy);
    expect(qemuImg(['snapshot', '-a', 's1', copy]).status).to.equal(0);
    qemuIo(copy, ['read -P 0xaa 0 256k', 'read -P 0x11 1M 64k', 'read -P 0 2M 64k']);
    expect(qemuImg(['snapshot', '-a', 's2', copy]).status).to.equal(0);
    qemuIo(copy, ['read -P 0xbb 0 128k', 'read -P 0xaa 128k 128k', 'read -P 0x22 2M 64k']);
  }

  it('counts snapshot tables: a clean image with snapshots checks clean, -r leaks changes nothing', async () => {
    const f = withSnapshots('snap.qcow2');
    const before = readFileSync(f);
    expect(await vmm('check', f), out).to.equal(0);
    expect(out).to.match(/No errors were found/);
    expect(await vmm('check', '-r', 'leaks', f), out).to.equal(0);
    expect(readFileSync(f).equals(before), 'check -r leaks rewrote the image').to.equal(true);
    expect(await vmm('check', '-r', 'all', f), out).to.equal(0);
    expect(readFileSync(f).equals(before), 'check -r all rewrote the image').to.equal(true);
    expectSnapshotsIntact(f);
    qemuIo(f, ['read -P 0xbb 0 64k', 'read -P 0xcc 64k 64k', 'read -P 0x22 2M 64k'], 'qcow2');
  });

  it('a real leak in an image with snapshots is still repaired, and the snapshots survive', async () => {
    const f = withSnapshots('leak.qcow2');
    // Raise the refcount of a cluster past everything in use: a leak qemu-img sees too.
    const b = readFileSync(f);
    const end = b.length / 65536;
    const block = Number(b.readBigUInt64BE(Number(b.readBigUInt64BE(48))));
    b.writeUInt16BE(1, block + 2 * (end + 2));
    writeFileSync(f, Buffer.concat([b, Buffer.alloc(65536 * 4)]));
    expect(qemuCheck(f).leaks).to.equal(1);
    expect(await vmm('check', f)).to.equal(3);
    expect(out).to.match(new RegExp(`Leaked cluster ${end + 2} refcount=1 reference=0`));
    expect(out.match(/Leaked cluster/g)).to.have.length(1);
    expect(await vmm('check', '-r', 'leaks', f), out).to.equal(0);
    expect(qemuCheck(f).leaks).to.equal(0);
    expectSnapshotsIntact(f);
  });

  it('counts persistent bitmaps while the image says they are valid', async () => {
    const f = t.path('bitmap.qcow2');
    expect(qemuImg(['create', '-f', 'qcow2', f, '4M']).status).to.equal(0);
    expect(qemuImg(['bitmap', '--add', f, 'b0']).status).to.equal(0);
    qemuIo(f, ['write -P 0x5a 0 1M']);
    expect(qemuImg(['snapshot', '-c', 's1', f]).status).to.equal(0);
    const before = readFileSync(f);
    expect(qemuCheck(f).status).to.equal(0);
    expect(await vmm('check', '-r', 'leaks', f), out).to.equal(0);
    expect(readFileSync(f).equals(before), 'bitmap clusters were freed').to.equal(true);
    expect(qemuImg(['info', f]).stdout).to.match(/b0/);
  });

  it('refuses to repair when a snapshot table cannot be followed, leaving the image as it was', async () => {
    const f = withSnapshots('broken.qcow2');
    const b = readFileSync(f);
    // Point snapshot 0's L1 table past the end of the file: its clusters now look leaked.
    const snapshots = Number(b.readBigUInt64BE(64));
    b.writeBigUInt64BE(BigInt(b.length + 65536 * 64), snapshots);
    writeFileSync(f, b);
    expect(await vmm('check', '-r', 'leaks', f)).to.equal(2);
    expect(out).to.match(/Repair refused: .*could not be followed/);
    expect(readFileSync(f).equals(b), 'a refused repair changed the image').to.equal(true);
  });
});
