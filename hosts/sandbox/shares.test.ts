import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { planShares, shareMountScript, startShares } from './shares.js';
import { startVirtiofsd, virtiofsdArgs } from './virtiofs.js';

describe('sandbox shares (disks reached live over virtio-fs)', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'shares-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('plans one share per real folder; a link is bound at its own path; a file named twice is writable', () => {
    mkdirSync(join(dir, 'a'));
    mkdirSync(join(dir, 'b'));
    for (const f of ['a/x.raw', 'a/y.qcow2', 'b/z.img']) writeFileSync(join(dir, f), '');
    symlinkSync(join(dir, 'b', 'z.img'), join(dir, 'a', 'link.img'));
    const plan = planShares([
      { path: join(dir, 'a/x.raw'), readOnly: false },
      { path: join(dir, 'a/y.qcow2'), readOnly: true },
      { path: join(dir, 'a/link.img'), readOnly: true },
      { path: join(dir, 'a/y.qcow2'), readOnly: false },
    ]);
    expect(plan).to.deep.equal([
      {
        dir: join(dir, 'a'),
        files: [
          { name: 'x.raw', dest: join(dir, 'a/x.raw'), readOnly: false },
          { name: 'y.qcow2', dest: join(dir, 'a/y.qcow2'), readOnly: false },
        ],
      },
      { dir: join(dir, 'b'), files: [{ name: 'z.img', dest: join(dir, 'a/link.img'), readOnly: true }] },
    ]);
  });

  it('refuses what virtio-fs cannot carry, naming the file: a device, a folder, a missing file', () => {
    expect(() => planShares([{ path: '/dev/null', readOnly: false }])).to.throw(
      /cannot share \/dev\/null into the sandbox: not a regular file/,
    );
    expect(() => planShares([{ path: dir, readOnly: false }])).to.throw(/not a regular file/);
    expect(() => planShares([{ path: join(dir, 'none'), readOnly: false }])).to.throw(/cannot share .*none.*ENOENT/);
  });

  it('the L1 script mounts each share by its tag and binds each file in place, read-only ones remounted ro', () => {
    const script = shareMountScript(
      [
        { dir: '/h/a', files: [{ name: 'x.raw', dest: "/h/a/it's.raw", readOnly: false }] },
        { dir: '/h/b', files: [{ name: 'z.img', dest: '/h/c/z.img', readOnly: true }] },
      ],
      '/newroot',
    );
    expect(script).to.include('mkdir -p /tsvmm-shares/0 && mount -t virtiofs tsvmm-share-0 /tsvmm-shares/0 || fail');
    expect(script).to.include(`bind_file '/tsvmm-shares/0/x.raw' '/newroot/h/a/it'\\''s.raw' rw`);
    expect(script).to.include(`bind_file '/tsvmm-shares/1/z.img' '/newroot/h/c/z.img' ro`);
    expect(spawnSync('sh', ['-n', '-c', `fail() { :; }\n${script}`]).status, 'valid sh').to.equal(0);
    expect(shareMountScript([], '/newroot')).to.equal('');
  });

  it('virtiofsd: starts on the folder write-through (cache=auto, no_writeback), listens, gives QEMU its device', async () => {
    const args = virtiofsdArgs(dir, join(dir, 's.sock'));
    expect(args).to.include.members([`source=${dir}`, 'cache=auto', 'no_writeback']);
    const [share] = await startShares([{ dir, files: [] }], dir);
    try {
      expect(existsSync(join(dir, 'virtiofs-0.sock'))).to.equal(true);
      expect(share!.tag).to.equal('tsvmm-share-0');
      expect(share!.qemuArgs.join(' ')).to.equal(
        `-chardev socket,id=vfs0,path=${join(dir, 'virtiofs-0.sock')} -device vhost-user-fs-device,chardev=vfs0,tag=tsvmm-share-0`,
      );
    } finally {
      share!.stop();
    }
  });

  it("virtiofsd: a folder it cannot serve is one clear error with the daemon's words", async () => {
    let err: Error | undefined;
    try {
      await startVirtiofsd(join(dir, 'missing'), dir, 0);
    } catch (e) {
      err = e as Error;
    }
    expect(err?.message).to.match(
      /^cannot share .*missing into the sandbox: virtiofsd ended before it listened \(status \d+\): .+/,
    );
    let missing: Error | undefined;
    try {
      await startVirtiofsd(dir, dir, 1, join(dir, 'no-virtiofsd'));
    } catch (e) {
      missing = e as Error;
    }
    expect(missing?.message).to.match(
      /virtiofsd, which is missing: .*no-virtiofsd \(apt-get install qemu-system-common\)/,
    );
  });
});
