import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { X86BootError } from '../errors.js';
import { GuestAddress } from '../../../core/address.js';
import { testGuestMemory } from '../../../core/testing/test-memory.js';
import { withBootFiles } from './files.js';
import { BootFileError } from '../../../core/host/boot-files.js';

/** Whether `fd` is open in this process. */
function isOpen(fd: number): boolean {
  try {
    fs.fstatSync(fd);
    return true;
  } catch {
    return false;
  }
}

describe('x86 boot files', () => {
  it('lends images of the open files that read headers and copy into guest memory, then closes them', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'x86-files-'));
    try {
      const kernel = Buffer.alloc(3 * 4096 + 17);
      for (let i = 0; i < kernel.length; i++) kernel[i] = (i * 7) & 0xff;
      fs.writeFileSync(path.join(dir, 'vmlinux'), kernel);
      fs.writeFileSync(path.join(dir, 'initrd'), 'initramfs bytes');
      const files = { kernel: path.join(dir, 'vmlinux'), initramfs: path.join(dir, 'initrd') };
      const mem = testGuestMemory(1 << 20);
      const openFds = () => new Set(fs.readdirSync('/proc/self/fd').map(Number).filter(isOpen));
      const before = openFds();
      let fds: number[] = [];
      const got = withBootFiles(files, (k, i) => {
        fds = [...openFds()].filter((fd) => !before.has(fd));
        k.copyTo(mem, GuestAddress.of(0x1000n), 5, k.length - 5);
        i!.copyTo(mem, GuestAddress.of(0x9000n), 0, i!.length);
        return { length: k.length, head: Buffer.from(k.bytes(0, 8)), mid: Buffer.from(k.bytes(4096, 4100)) };
      });
      expect(got).to.deep.equal({
        length: kernel.length,
        head: kernel.subarray(0, 8),
        mid: kernel.subarray(4096, 4100),
      });
      expect(Buffer.from(mem.read(GuestAddress.of(0x1000n), kernel.length - 5)).equals(kernel.subarray(5))).to.equal(
        true,
      );
      expect(Buffer.from(mem.read(GuestAddress.of(0x9000n), 15)).toString()).to.equal('initramfs bytes');
      expect(fds.length, 'the two files are open while lent').to.equal(2);
      expect(fds.filter(isOpen), 'and closed once loaded').to.deep.equal([]);
      let during: number[] = [];
      expect(() =>
        withBootFiles(files, () => {
          during = [...openFds()].filter((fd) => !before.has(fd));
          throw new Error('bad kernel');
        }),
      ).to.throw('bad kernel');
      expect(during.length).to.equal(2);
      expect(during.filter(isOpen), 'closed after a throw').to.deep.equal([]);
      expect(() => withBootFiles({ kernel: path.join(dir, 'missing') }, () => 0)).to.throw(BootFileError, /kernel/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a boot file that shrinks while it is loaded, naming it, instead of loading a short kernel', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'x86-files-'));
    try {
      const file = path.join(dir, 'vmlinux');
      fs.writeFileSync(file, Buffer.alloc(8192, 1));
      const mem = testGuestMemory(1 << 20);
      const err = (() => {
        try {
          withBootFiles({ kernel: file }, (k) => {
            fs.truncateSync(file, 4096);
            k.copyTo(mem, GuestAddress.of(0x1000n), 0, k.length);
          });
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      expect(err).to.be.instanceOf(X86BootError);
      expect((err as Error).message).to.match(
        /kernel .*vmlinux shrank while it was loaded \(no bytes at offset 4096\)/,
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
