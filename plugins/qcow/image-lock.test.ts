import { expect } from 'chai';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import sinon from 'sinon';
import { lockImage, setImageLockWarning } from '../../core/block/image-lock.js';
import { c, ERRNO, koffi } from '../../core/native/libc.js';
import { RawFileDisk } from '../raw-disk/raw-disk.js';
import { createQcow2 } from './create.js';
import { openQcow2 } from './open.js';
import { hasQemuImg, imageCli, QEMU_MISSING, qemuImg, tempDir } from './testing.js';
import { skipUnlessCi } from '../../test/setup/environment.js';

/** qemu-io holding an image open (its `sleep` command keeps it open) until stop(). */
interface Holder {
  pid: number;
  stop(): Promise<void>;
}

/** Starts qemu-io on `file` and waits until its lock bytes show in /proc/locks (polled, not slept). */
async function hold(file: string, format: 'qcow2' | 'raw', readOnly = false): Promise<Holder> {
  const ino = statSync(file).ino;
  const p: ChildProcess = spawn('qemu-io', [...(readOnly ? ['-r'] : []), '-f', format, '-c', 'sleep 600000', file], {
    stdio: 'ignore',
  });
  const marker = new RegExp(`:${ino} 100 `, 'm');
  for (;;) {
    if (p.exitCode !== null || p.signalCode !== null) throw new Error(`qemu-io exited with ${p.exitCode}`);
    if (marker.test(readFileSync('/proc/locks', 'utf8'))) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    pid: p.pid!,
    stop: () =>
      new Promise<void>((res) => {
        if (p.exitCode !== null || p.signalCode !== null) return res();
        p.once('exit', () => res());
        p.kill('SIGKILL');
      }),
  };
}

/** qemu-io one command, read-write unless `readOnly`; returns its exit status and output. */
function qemuIoOnce(
  file: string,
  format: string,
  cmd: string,
  readOnly = false,
): { status: number | null; out: string } {
  const r = spawnSync('qemu-io', [...(readOnly ? ['-r'] : []), '-f', format, '-c', cmd, file], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: r.status, out: r.stdout + r.stderr };
}

/**
 * Image locking between processes (issue 11 item 3): the vmm takes QEMU's lock bytes (100+,
 * 200+), so vmm and qemu-io/qemu-img exclude each other both ways, read-only opens share,
 * and --force-share reads anyway.
 */
describe('qcow/raw: image locks against QEMU', function () {
  this.timeout(60_000);
  const t = tempDir('vmm-lock-');
  before(function () {
    if (!hasQemuImg) skipUnlessCi(this, QEMU_MISSING);
  });
  const holders: Holder[] = [];
  after(async () => {
    await Promise.all(holders.map((h) => h.stop()));
    t.cleanup();
  });
  async function held(file: string, format: 'qcow2' | 'raw', readOnly = false): Promise<Holder> {
    const h = await hold(file, format, readOnly);
    holders.push(h);
    return h;
  }
  async function image(name: string, backing?: string): Promise<string> {
    const f = t.path(name);
    await createQcow2({ path: f, size: 1 << 20, backingFile: backing, backingFormat: backing ? 'qcow2' : undefined });
    return f;
  }

  it('qcow2 held read-write by qemu-io: vmm refuses read-write and read-only, naming the file and the holder', async () => {
    const f = await image('held-rw.qcow2');
    const h = await held(f, 'qcow2');
    for (const readOnly of [false, true]) {
      const err = await openQcow2({ path: f, readOnly }).then(
        () => undefined,
        (e: Error) => e,
      );
      expect(err, `readOnly=${readOnly}`).to.be.instanceOf(Error);
      expect(err!.message).to.include(f);
      expect(err!.message).to.match(new RegExp(`pid ${h.pid} \\(qemu-io`));
      expect((err as { kind?: string }).kind).to.equal('Locked');
    }
    // Read-only inspection that shares the image: allowed with force-share.
    const img = await openQcow2({ path: f, readOnly: true, forceShare: true });
    await img.close();
    await h.stop();
    await (await openQcow2({ path: f, readOnly: false })).close();
  });

  it('qcow2 held read-only by qemu-io: vmm may read it too, but not write it', async () => {
    const f = await image('held-ro.qcow2');
    await held(f, 'qcow2', true);
    const ro = await openQcow2({ path: f, readOnly: true });
    await ro.close();
    const err = await openQcow2({ path: f, readOnly: false }).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err?.message).to.match(/is in use/);
  });

  it('qcow2 open read-write in vmm: qemu-io cannot write it, qemu-img info needs -U', async () => {
    const f = await image('ours-rw.qcow2');
    const img = await openQcow2({ path: f, readOnly: false });
    try {
      const w = qemuIoOnce(f, 'qcow2', 'write 0 512');
      expect(w.status).to.not.equal(0);
      expect(w.out).to.match(/Failed to get "write" lock/);
      expect(qemuImg(['info', f]).stderr).to.match(/Failed to get shared "write" lock/);
      expect(qemuImg(['info', '-U', f]).status).to.equal(0);
    } finally {
      await img.close();
    }
    expect(qemuImg(['info', f]).status).to.equal(0);
  });

  it('qcow2 open read-only in vmm: qemu-img info shares it, qemu-io cannot write it', async () => {
    const f = await image('ours-ro.qcow2');
    const img = await openQcow2({ path: f, readOnly: true });
    try {
      expect(qemuImg(['info', f]).status).to.equal(0);
      expect(qemuIoOnce(f, 'qcow2', 'read 0 512', true).status).to.equal(0);
      expect(qemuIoOnce(f, 'qcow2', 'write 0 512').out).to.match(/Failed to get "write" lock/);
    } finally {
      await img.close();
    }
  });

  it('backing files are locked read-only both ways', async () => {
    const base = await image('base.qcow2');
    const top = await image('top.qcow2', 'base.qcow2');
    const img = await openQcow2({ path: top, readOnly: false, allowBacking: true });
    try {
      expect(qemuIoOnce(base, 'qcow2', 'write 0 512').out).to.match(/Failed to get "write" lock/);
      expect(qemuImg(['info', base]).status).to.equal(0);
    } finally {
      await img.close();
    }
    await held(base, 'qcow2');
    const err = await openQcow2({ path: top, readOnly: false, allowBacking: true }).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err?.message).to.include(base);
    expect(err?.message).to.match(/is in use/);
  });

  it('raw disks: vmm and qemu-io exclude each other', async () => {
    const f = t.path('disk.raw');
    writeFileSync(f, Buffer.alloc(1 << 20));
    const disk = RawFileDisk.open({ path: f, readOnly: false });
    try {
      expect(qemuIoOnce(f, 'raw', 'write 0 512').out).to.match(/Failed to get "write" lock/);
    } finally {
      await disk.close();
    }
    await held(f, 'raw');
    expect(() => RawFileDisk.open({ path: f, readOnly: false })).to.throw(/disk\.raw is in use.*qemu-io/);
    expect(() => RawFileDisk.open({ path: f, readOnly: true })).to.throw(/is in use/);
  });

  it('vmm image: check -r leaks refuses an image qemu-io holds; info needs --force-share', async () => {
    const f = await image('cli.qcow2');
    const before = readFileSync(f);
    await held(f, 'qcow2');
    const out: string[] = [];
    const stub = sinon.stub(process.stderr, 'write').callsFake((s: string | Uint8Array) => (out.push(String(s)), true));
    const stubOut = sinon
      .stub(process.stdout, 'write')
      .callsFake((s: string | Uint8Array) => (out.push(String(s)), true));
    const run = imageCli;
    try {
      expect(await run('check', '-r', 'leaks', f)).to.equal(1);
      expect(await run('info', f)).to.equal(1);
      expect(out.join('')).to.match(/is in use.*--force-share/);
      expect(await run('info', '-U', f)).to.equal(0);
      expect(await run('check', '-U', f)).to.equal(0);
    } finally {
      stub.restore();
      stubOut.restore();
    }
    expect(readFileSync(f).equals(before), 'the held image was not touched').to.equal(true);
  });

  it('a filesystem without OFD locks: one warning, the open goes on', () => {
    const f = t.path('nolock.raw');
    writeFileSync(f, Buffer.alloc(4096));
    const warnings: string[] = [];
    const prev = setImageLockWarning((m) => warnings.push(m));
    const fcntl = sinon.stub(c, 'fcntlPtr').returns(-1);
    const errno = sinon.stub(koffi, 'errno').returns(ERRNO.ENOLCK!);
    try {
      const a = RawFileDisk.open({ path: f, readOnly: false });
      const b = RawFileDisk.open({ path: f, readOnly: false });
      void a.close();
      void b.close();
      expect(() => lockImage(0, f, 'read-only')).to.not.throw();
    } finally {
      fcntl.restore();
      errno.restore();
      setImageLockWarning(prev);
    }
    expect(warnings).to.have.length(1);
    expect(warnings[0]).to.match(/nolock\.raw: the filesystem does not support OFD locks \(ENOLCK\)/);
  });
});
