import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { HostFiles } from '../../../core/host/host-files.js';
import { X86BootError } from '../errors.js';
import { resolveBootFile } from './files.js';

describe('x86 boot files', () => {
  const hostFiles: HostFiles = {
    resolve: async (spec) => {
      if (spec === 'kit:broken') throw new Error("cannot get 'kit:broken': gone");
      return spec.startsWith('kit:') ? `/kit/${spec.slice(4)}` : undefined;
    },
  };

  it('takes names a host serves from HostFiles and anything else as a path relative to the YAML folder', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'x86-files-'));
    try {
      fs.writeFileSync(path.join(dir, 'vmlinux'), 'x');
      expect(await resolveBootFile('kit:vmlinux', dir, hostFiles)).to.equal('/kit/vmlinux');
      expect(await resolveBootFile('vmlinux', dir, hostFiles)).to.equal(path.join(dir, 'vmlinux'));
      expect(await resolveBootFile('vmlinux', dir)).to.equal(path.join(dir, 'vmlinux'));
      const err = await resolveBootFile('kit:broken', dir, hostFiles).catch((e: unknown) => e);
      expect(err).to.be.instanceOf(X86BootError);
      expect((err as Error).message).to.equal("cannot get 'kit:broken': gone");
      const missing = await resolveBootFile('kit:vmlinux', dir).catch((e: unknown) => e); // no host: a path
      expect(missing).to.be.instanceOf(X86BootError);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
