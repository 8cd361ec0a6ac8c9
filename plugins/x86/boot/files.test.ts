import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { HostFiles } from '../../../core/host/host-files.js';
import { X86BootError } from '../errors.js';
import { addressOf } from '../../../core/native/libc.js';
import { resolveBootFile, withBootFiles } from './files.js';

/** Whether a mapping of this process covers the host address (from /proc/self/maps). */
function mapped(addr: bigint): boolean {
  return fs
    .readFileSync('/proc/self/maps', 'utf8')
    .split('\n')
    .some((l) => {
      const m = /^([0-9a-f]+)-([0-9a-f]+) /.exec(l);
      return m !== null && BigInt(`0x${m[1]}`) <= addr && addr < BigInt(`0x${m[2]}`);
    });
}

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

  it('lends the kernel and initramfs bytes only while they are loaded, then unmaps them (also after a throw)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'x86-files-'));
    try {
      const kernel = Buffer.alloc(3 * 4096 + 17, 0xab);
      fs.writeFileSync(path.join(dir, 'vmlinux'), kernel);
      fs.writeFileSync(path.join(dir, 'initrd'), 'initramfs bytes');
      const files = { kernel: path.join(dir, 'vmlinux'), initramfs: path.join(dir, 'initrd') };
      let addrs: bigint[] = [];
      const got = withBootFiles(files, (k, i) => {
        addrs = [addressOf(k), addressOf(i!)];
        expect(addrs.every(mapped), 'mapped while lent').to.equal(true);
        return { k: Buffer.from(k).equals(kernel), i: Buffer.from(i!).toString() };
      });
      expect(got).to.deep.equal({ k: true, i: 'initramfs bytes' });
      expect(addrs.some(mapped), 'unmapped once loaded').to.equal(false);
      expect(() =>
        withBootFiles(files, (k) => {
          addrs = [addressOf(k)];
          throw new Error('bad kernel');
        }),
      ).to.throw('bad kernel');
      expect(mapped(addrs[0]!), 'unmapped after a throw').to.equal(false);
      expect(() => withBootFiles({ kernel: path.join(dir, 'missing') }, () => 0)).to.throw(X86BootError, /kernel/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
