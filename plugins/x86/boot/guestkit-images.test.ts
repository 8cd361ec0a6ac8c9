import { expect } from 'chai';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { testGuestMemory } from '../../../core/testing/test-memory.js';
import { defaultCacheDir } from '../../../test/harness/guest-kit.js';
import { XLF_KERNEL_64, parseBzImage } from './bzimage.js';
import { parseElf } from './elf.js';
import { loadLinux } from './loader.js';
import { skipUnlessCi } from '../../../test/setup/environment.js';

/** A folder of the guest kit holding bzImage and vmlinux, if one was built on this machine. */
function kitDir(): string | undefined {
  const candidates = [process.env.TSVMM_GUESTKIT_DIR].filter((d): d is string => !!d);
  const cache = defaultCacheDir();
  if (existsSync(cache)) for (const d of readdirSync(cache)) candidates.push(join(cache, d));
  return candidates.find((d) => existsSync(join(d, 'bzImage')) && existsSync(join(d, 'vmlinux')));
}

describe('x86 loaders on the guest kit kernel', function () {
  const dir = kitDir();
  before(function () {
    if (!dir) skipUnlessCi(this, 'no guest kit on this machine: run `npm run setup`');
  });

  it('parses the real bzImage setup header and loads it', () => {
    const img = new Uint8Array(readFileSync(join(dir!, 'bzImage')));
    const h = parseBzImage(img);
    expect(h.version).to.be.at.least(0x020c);
    expect(h.xloadflags & XLF_KERNEL_64).to.equal(XLF_KERNEL_64);
    expect(h.relocatable).to.equal(true);
    expect(h.cmdlineSize).to.be.at.least(255);
    const plan = loadLinux(testGuestMemory(256 << 20), {
      kernel: img,
      cmdline: 'console=ttyS0',
      protocol: 'auto',
      vcpus: 2,
    });
    expect(plan.protocol).to.equal('bzimage');
    expect(plan.kernel.end > plan.kernel.start).to.equal(true);
  });

  it('finds the PVH entry of the real vmlinux and loads its segments', () => {
    const img = new Uint8Array(readFileSync(join(dir!, 'vmlinux')));
    const elf = parseElf(img);
    expect(elf.pvhEntry, 'XEN_ELFNOTE_PHYS32_ENTRY').to.not.equal(undefined);
    expect(elf.pvhEntry! < 1n << 32n).to.equal(true);
    const plan = loadLinux(testGuestMemory(256 << 20), {
      kernel: img,
      cmdline: 'console=ttyS0',
      protocol: 'pvh',
      vcpus: 1,
    });
    expect(plan.entry).to.equal(elf.pvhEntry);
    expect(plan.kernel.start >= 0x100000n).to.equal(true);
  });
});
