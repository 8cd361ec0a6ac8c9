import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { HostFiles } from './host-files.js';
import { BootFileError, openBootFile, readBootFile, resolveBootFile } from './boot-files.js';

describe('boot files (kernel, initramfs) named in a config', () => {
  const hostFiles: HostFiles = {
    resolve: async (spec) => {
      if (spec === 'kit:broken') throw new Error("cannot get 'kit:broken': gone");
      return spec.startsWith('kit:') ? `/kit/${spec.slice(4)}` : undefined;
    },
  };

  it('takes names a host serves from HostFiles and anything else as a path relative to the YAML folder', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'boot-files-'));
    try {
      fs.writeFileSync(path.join(dir, 'vmlinux'), 'x');
      expect(await resolveBootFile('kit:vmlinux', dir, hostFiles)).to.equal('/kit/vmlinux');
      expect(await resolveBootFile('vmlinux', dir, hostFiles)).to.equal(path.join(dir, 'vmlinux'));
      expect(await resolveBootFile('vmlinux', dir)).to.equal(path.join(dir, 'vmlinux'));
      const err = await resolveBootFile('kit:broken', dir, hostFiles).catch((e: unknown) => e);
      expect(err).to.be.instanceOf(BootFileError);
      expect((err as Error).message).to.equal("cannot get 'kit:broken': gone");
      const missing = await resolveBootFile('kit:vmlinux', dir).catch((e: unknown) => e); // no host: a path
      expect(missing).to.be.instanceOf(BootFileError);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reads a whole file, and refuses a directory or a missing file naming it; opening leaves no fd behind', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'boot-files-'));
    try {
      fs.writeFileSync(path.join(dir, 'Image'), 'arm64 kernel bytes');
      expect(Buffer.from(await readBootFile(path.join(dir, 'Image'), 'kernel')).toString()).to.equal(
        'arm64 kernel bytes',
      );
      const before = fs.readdirSync('/proc/self/fd').length;
      expect(() => openBootFile(dir, 'initramfs')).to.throw(
        BootFileError,
        /cannot read the initramfs .*not a regular file/,
      );
      expect(fs.readdirSync('/proc/self/fd').length, 'the refused fd is closed').to.equal(before);
      const err = await readBootFile(path.join(dir, 'missing'), 'kernel').catch((e: unknown) => e);
      expect(err).to.be.instanceOf(BootFileError);
      expect((err as Error).message).to.match(/^cannot read the kernel .*missing: /);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
