import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { deflateRawSync } from 'node:zlib';
import { decompressPayload, detectCompression, extractVmlinux, parseSetupHeader } from './bzimage.js';
import { inspectElf } from './elf.js';
import { GuestKitError } from './errors.js';
import { bzImageVersion } from './kit.js';
import { fakeBzImage, fakeElf } from './testing.js';
import { skipUnlessCi } from '../../test/setup/environment.js';

const hasTool = (t: string) => spawnSync(t, ['--version']).status === 0;

describe('guestkit bzImage extractor', () => {
  it('finds the payload through the setup header and returns the ELF inside (gzip)', () => {
    const elf = fakeElf(0x1000850);
    const { vmlinux, compression, header } = extractVmlinux(fakeBzImage(elf));
    expect(compression).to.equal('gzip');
    expect(header.protectedModeOffset).to.equal(4 * 512);
    expect(Buffer.from(vmlinux).equals(Buffer.from(elf))).to.equal(true);
    expect(inspectElf(vmlinux).pvhEntry).to.equal(0x1000850);
  });

  it('reads the kernel version string the header points at', () => {
    expect(bzImageVersion(fakeBzImage(fakeElf(), undefined, { version: '6.1.0-56-cloud-amd64 (x@y) #1' }))).to.equal(
      '6.1.0-56-cloud-amd64',
    );
  });

  it('reports a truncated image with both sizes', () => {
    const img = fakeBzImage(fakeElf(1));
    const cut = img.subarray(0, img.length - 100);
    expect(() => parseSetupHeader(cut)).to.throw(
      GuestKitError,
      /truncated: the header says \d+ bytes, the file has \d+/,
    );
  });

  it('rejects files that are not bzImages', () => {
    expect(() => parseSetupHeader(Buffer.alloc(100))).to.throw(/too small/);
    const noFlag = fakeBzImage(fakeElf());
    noFlag.writeUInt16LE(0, 0x1fe);
    expect(() => parseSetupHeader(noFlag)).to.throw(/boot flag/);
    const old = fakeBzImage(fakeElf());
    old.writeUInt16LE(0x0204, 0x206);
    expect(() => parseSetupHeader(old)).to.throw(/older than 2.08/);
  });

  it('rejects a payload that decompresses to a different size than the trailer says', () => {
    const elf = fakeElf();
    const img = fakeBzImage(elf);
    const pm = 4 * 512,
      off = img.readUInt32LE(0x248),
      len = img.readUInt32LE(0x24c);
    img.writeUInt32LE(elf.length + 1, pm + off + len - 4);
    expect(() => extractVmlinux(img)).to.throw(/decompressed to \d+ bytes, the image says/);
  });

  it('rejects an unknown compression format', () => {
    expect(detectCompression(deflateRawSync(Buffer.from('x')))).to.equal('unknown');
    expect(() => decompressPayload(Buffer.from([1, 2, 3, 4, 5, 6, 7, 8]))).to.throw(/unknown payload compression/);
  });

  it('recognizes the magic of each kernel compression', () => {
    const m = (...b: number[]) => detectCompression(Uint8Array.from([...b, 0, 0, 0, 0]));
    expect(m(0x1f, 0x8b)).to.equal('gzip');
    expect(m(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00)).to.equal('xz');
    expect(m(0x02, 0x21, 0x4c, 0x18)).to.equal('lz4');
    expect(m(0x28, 0xb5, 0x2f, 0xfd)).to.equal('zstd');
    expect(m(0x42, 0x5a, 0x68)).to.equal('bzip2');
  });

  for (const [tool, args] of [
    ['xz', ['-c', '--check=crc32']],
    ['zstd', ['-c', '-q']],
    ['lz4', ['-l', '-c']],
  ] as const) {
    it(`decompresses a ${tool} payload made by the ${tool} tool`, function () {
      if (!hasTool(tool)) skipUnlessCi(this, `the ${tool} tool is not installed (Debian xz-utils, zstd, lz4)`);
      const elf = fakeElf(0x2000);
      const r = spawnSync(tool, [...args], { input: elf });
      expect(r.status).to.equal(0);
      const { vmlinux, compression } = extractVmlinux(fakeBzImage(elf, r.stdout));
      expect(compression).to.equal(tool);
      expect(inspectElf(vmlinux).pvhEntry).to.equal(0x2000);
    });
  }
});

describe('guestkit ELF check', () => {
  it('finds the Xen PHYS32_ENTRY note, or reports none', () => {
    expect(inspectElf(fakeElf(0x1234)).pvhEntry).to.equal(0x1234);
    expect(inspectElf(fakeElf()).pvhEntry).to.equal(undefined);
  });

  it('rejects non-ELF, non-x86-64 and truncated files', () => {
    expect(() => inspectElf(Buffer.alloc(64))).to.throw(/no ELF magic/);
    const arm = Buffer.from(fakeElf(1));
    arm.writeUInt16LE(183, 18);
    expect(() => inspectElf(arm)).to.throw(/not x86-64/);
    const elf = fakeElf(1);
    expect(() => inspectElf(elf.subarray(0, 100))).to.throw(/outside the file/);
  });

  it('survives hostile note sizes without reading out of bounds', () => {
    const elf = Buffer.from(fakeElf(0x55));
    const noteOff = 64 + 2 * 56;
    elf.writeUInt32LE(0xfffffff0, noteOff); // namesz far past the segment
    expect(inspectElf(elf).pvhEntry).to.equal(undefined);
  });
});
