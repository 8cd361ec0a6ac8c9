import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { GuestAddress } from '../../../core/address.js';
import { testGuestMemory } from '../../../core/testing/test-memory.js';
import { fakeBzImage, fakeElfKernel } from '../testing.js';
import { withBootFiles } from './files.js';
import { loadLinux, type BootInput } from './loader.js';

const MiB = 1 << 20;

/** Loads `kernel` + `initrd` once from the bytes and once from files on disk; returns both plans and memories. */
function loadBothWays(kernel: Uint8Array, initrd: Uint8Array) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'x86-image-'));
  try {
    const files = { kernel: path.join(dir, 'kernel'), initramfs: path.join(dir, 'initrd') };
    fs.writeFileSync(files.kernel, kernel);
    fs.writeFileSync(files.initramfs, initrd);
    const base: Omit<BootInput, 'kernel'> = { cmdline: 'console=ttyS0', protocol: 'auto', vcpus: 2 };
    const fromBytes = testGuestMemory(64 * MiB);
    const a = loadLinux(fromBytes, { ...base, kernel, initramfs: initrd });
    const fromFiles = testGuestMemory(64 * MiB);
    const b = withBootFiles(files, (k, i) => loadLinux(fromFiles, { ...base, kernel: k, initramfs: i }));
    return { a, b, fromBytes, fromFiles };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe('x86 boot images: a kernel loaded from its open file equals one loaded from its bytes', () => {
  for (const [name, kernel] of [
    ['bzImage', fakeBzImage()],
    ['ELF (PVH)', fakeElfKernel()],
  ] as const) {
    it(`${name}: the same plan and the same guest memory, byte for byte`, () => {
      const initrd = new Uint8Array(70_000).map((_, i) => (i * 13) & 0xff);
      const { a, b, fromBytes, fromFiles } = loadBothWays(kernel, initrd);
      expect(b).to.deep.equal(a);
      const all = (m: typeof fromBytes) => m.read(GuestAddress.of(0), 64 * MiB);
      expect(Buffer.compare(all(fromBytes), all(fromFiles))).to.equal(0);
      // and the kernel and initramfs really are there (not two equally empty memories)
      const initrdAt = GuestAddress.of(a.initramfs!.address);
      expect(Buffer.from(fromFiles.read(initrdAt, initrd.length)).equals(initrd)).to.equal(true);
    });
  }
});
