import { expect } from 'chai';
import { fakeArm64Image } from '../testing.js';
import { parseArm64Image } from './image.js';
import { planArm64Boot } from './placement.js';

const MIB = 1n << 20n;

describe('arm64 Image header', () => {
  it('reads text_offset, image_size, page size and placement', () => {
    const h = parseArm64Image(fakeArm64Image({ textOffset: 0x80000n, imageSize: 3n * MIB, flags: 0b0010n }));
    expect(h).to.deep.equal({ textOffset: 0x80000n, imageSize: 3n * MIB, pageSize: '4K', placementAnywhere: false });
    expect(parseArm64Image(fakeArm64Image({ flags: 0b1110n })).pageSize).to.equal('64K');
  });

  it('refuses what it cannot boot, each with its reason', () => {
    const cases: Array<[Uint8Array, RegExp]> = [
      [new Uint8Array([0x1f, 0x8b, 8, 0]), /gzip-compressed/],
      [new Uint8Array(63), /shorter than the 64-byte header/],
      [fakeArm64Image({ magic: 0x12345678 }), /no "ARM\\x64" magic/],
      [fakeArm64Image({ imageSize: 0n }), /image_size is 0/],
      [fakeArm64Image({ flags: 1n }), /big-endian/],
      [fakeArm64Image({ flags: 0x10n }), /unknown flag bits/],
      [fakeArm64Image({ textOffset: 2n * MIB }), /text_offset/],
      [fakeArm64Image({ textOffset: 0x80001n }), /text_offset/],
      [fakeArm64Image({ length: 0x10000, imageSize: 0x8000n }), /smaller than the 65536-byte file/],
      [fakeArm64Image({ imageSize: 1n << 40n }), /implausibly large/],
    ];
    for (const [img, why] of cases) expect(() => parseArm64Image(img), String(why)).to.throw(why);
    const zboot = fakeArm64Image({ magic: 0 });
    zboot.set(Buffer.from('MZ\0\0zimg'), 0);
    expect(() => parseArm64Image(zboot)).to.throw(/EFI zboot/);
  });
});

describe('arm64 boot placement', () => {
  const ram = { start: 0x4000_0000n, size: 256n * MIB };
  const header = parseArm64Image(fakeArm64Image({ textOffset: 0x80000n, imageSize: 40n * MIB }));

  it('puts the kernel at RAM + text_offset, the device tree in the last 2 MiB, the initramfs below it', () => {
    const p = planArm64Boot(ram, header, 5_000_000);
    expect(p.kernel).to.equal(0x4008_0000n);
    expect(p.kernelEnd).to.equal(0x4008_0000n + 40n * MIB);
    expect(p.fdt).to.equal(0x4000_0000n + 254n * MIB);
    expect(p.initrd!.end - p.initrd!.start).to.equal(5_000_000n);
    expect(p.initrd!.start % 4096n).to.equal(0n);
    expect(p.initrd!.end <= p.fdt && p.initrd!.start >= p.kernelEnd).to.equal(true);
    expect(planArm64Boot(ram, header, undefined).initrd).to.equal(undefined);
  });

  it('refuses a boot that does not fit', () => {
    expect(() => planArm64Boot({ start: ram.start, size: 40n * MIB }, header, undefined)).to.throw(/do not fit/);
    expect(() => planArm64Boot(ram, header, 300_000_000)).to.throw(/initramfs do not fit/);
    expect(() => planArm64Boot({ start: ram.start + 4096n, size: ram.size }, header, 1)).to.throw(/2 MiB boundary/);
  });
});
