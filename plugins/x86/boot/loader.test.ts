import { expect } from 'chai';
import { GuestAddress } from '../../../core/address.js';
import { X86Layout } from '../layout.js';
import { testGuestMemory } from '../../../core/testing/test-memory.js';
import { X86BootError } from '../errors.js';
import { E820_RAM, E820_RESERVED } from '../platform/memory-map.js';
import { fakeBzImage, fakeElfKernel } from '../testing.js';
import { loadLinux, type BootInput } from './loader.js';
import { HVM_START_MAGIC } from './pvh.js';

const MiB = 1 << 20;
const at = (v: bigint | number) => GuestAddress.of(v);

function input(kernel: Uint8Array, extra: Partial<BootInput> = {}): BootInput {
  return { kernel, cmdline: 'console=ttyS0 panic=-1', protocol: 'auto', vcpus: 1, ...extra };
}

function expectBootError(fn: () => unknown, kind: string): X86BootError {
  try {
    fn();
  } catch (e) {
    expect(e).to.be.instanceOf(X86BootError);
    expect((e as X86BootError).kind).to.equal(kind);
    return e as X86BootError;
  }
  expect.fail(`expected an X86BootError ${kind}`);
}

function readCString(mem: ReturnType<typeof testGuestMemory>, addr: bigint): string {
  let s = '';
  for (let a = addr; ; a++) {
    const b = mem.readU8(at(a));
    if (b === 0) return s;
    s += String.fromCharCode(b);
  }
}

describe('x86 loadLinux: bzImage', () => {
  it('loads the protected-mode kernel at 1 MiB and fills the zero page', () => {
    const mem = testGuestMemory(64 * MiB);
    const image = fakeBzImage();
    const initrd = new Uint8Array(10_000).fill(0xab);
    const plan = loadLinux(mem, input(image, { initramfs: initrd }));

    expect(plan.protocol).to.equal('bzimage');
    expect(plan.entry).to.equal(0x100200n);
    expect(plan.bootInfo).to.equal(X86Layout.ZERO_PAGE);
    expect(plan.cr3).to.equal(X86Layout.PML4);
    // The protected-mode kernel follows the 5 setup sectors in the file.
    expect(mem.read(at(X86Layout.HIGH_MEMORY), 64 * 1024)).to.deep.equal(image.subarray(2560));

    const zp = X86Layout.ZERO_PAGE;
    expect(mem.readU16(at(zp + 0x1fen))).to.equal(0xaa55);
    expect(mem.readU32(at(zp + 0x202n))).to.equal(0x53726448);
    expect(mem.readU8(at(zp + 0x210n))).to.equal(0xff, 'type_of_loader');
    expect(mem.readU8(at(zp + 0x211n)) & 1).to.equal(1, 'LOADED_HIGH kept');
    expect(mem.readU16(at(zp + 0x1fan))).to.equal(0xffff, 'vid_mode');
    expect(mem.readU32(at(zp + 0x228n))).to.equal(Number(X86Layout.CMDLINE));
    expect(readCString(mem, X86Layout.CMDLINE)).to.equal('console=ttyS0 panic=-1');

    // initramfs: page-aligned, as high as possible below the end of RAM, contents copied.
    const rdImage = BigInt(mem.readU32(at(zp + 0x218n)));
    expect(mem.readU32(at(zp + 0x21cn))).to.equal(10_000);
    expect(rdImage % 4096n).to.equal(0n);
    expect(rdImage + 10_000n <= 64n * 1024n * 1024n).to.equal(true);
    expect(64n * 1024n * 1024n - (rdImage + 10_000n) < 4096n).to.equal(true);
    expect(mem.read(at(rdImage), 10_000)).to.deep.equal(initrd);
    expect(plan.initramfs).to.deep.equal({ address: rdImage, size: 10_000n });

    // e820: RAM below the EBDA, the legacy area reserved, RAM from 1 MiB, KVM's pages reserved.
    const n = mem.readU8(at(zp + 0x1e8n));
    const e820 = Array.from({ length: n }, (_, i) => {
      const o = zp + 0x2d0n + BigInt(i * 20);
      return { addr: mem.readU64(at(o)), size: mem.readU64(at(o + 8n)), type: mem.readU32(at(o + 16n)) };
    });
    expect(e820).to.deep.equal([
      { addr: 0n, size: X86Layout.EBDA_START, type: E820_RAM },
      { addr: X86Layout.EBDA_START, size: 0x100000n - X86Layout.EBDA_START, type: E820_RESERVED },
      { addr: 0x100000n, size: 63n * 1024n * 1024n, type: E820_RAM },
      { addr: X86Layout.KVM_IDENTITY_MAP, size: 0x4000n, type: E820_RESERVED },
    ]);
  });

  it('respects initrd_addr_max', () => {
    const mem = testGuestMemory(64 * MiB);
    const plan = loadLinux(
      mem,
      input(fakeBzImage({ initrdAddrMax: 32 * MiB - 1 }), { initramfs: new Uint8Array(5000) }),
    );
    expect(plan.initramfs!.address + 5000n <= 32n * 1024n * 1024n).to.equal(true);
    expect(plan.initramfs!.address).to.equal(32n * 1024n * 1024n - 8192n);
  });

  it('writes a GDT with __BOOT_CS = 0x10 (64-bit code) and __BOOT_DS = 0x18', () => {
    const mem = testGuestMemory(64 * MiB);
    const plan = loadLinux(mem, input(fakeBzImage()));
    expect(plan.gdtLimit).to.equal(31);
    expect(mem.readU64(at(X86Layout.BOOT_GDT + 0x10n))).to.equal(0x00af9b000000ffffn);
    expect(mem.readU64(at(X86Layout.BOOT_GDT + 0x18n))).to.equal(0x00cf93000000ffffn);
  });

  it('rejects bad images and inputs before running anything', () => {
    const mem = testGuestMemory(64 * MiB);
    expectBootError(() => loadLinux(mem, input(new Uint8Array(4096))), 'UnknownKernelFormat');
    expectBootError(() => loadLinux(mem, input(fakeBzImage().subarray(0, 0x240))), 'TruncatedKernel');
    expectBootError(() => loadLinux(mem, input(fakeBzImage({ kernelSize: 16 }).subarray(0, 2000))), 'TruncatedKernel');
    expectBootError(() => loadLinux(mem, input(fakeBzImage({ syssize: 0x10_0000 }))), 'TruncatedKernel');
    expectBootError(() => loadLinux(mem, input(fakeBzImage({ version: 0x0205 }))), 'UnsupportedKernel');
    expectBootError(() => loadLinux(mem, input(fakeBzImage({ loadflags: 0 }))), 'UnsupportedKernel');
    expectBootError(() => loadLinux(mem, input(fakeBzImage({ xloadflags: 0 }))), 'UnsupportedKernel');
    expectBootError(() => loadLinux(mem, input(fakeBzImage(), { protocol: 'pvh' })), 'NoPvhEntry');
    const err = expectBootError(() => loadLinux(mem, input(fakeBzImage({ cmdlineSize: 10 }))), 'CmdlineTooLong');
    expect(err.data).to.include({ limit: 10 });
    expectBootError(
      () => loadLinux(mem, input(fakeBzImage(), { cmdline: 'x'.repeat(X86Layout.CMDLINE_MAX) })),
      'CmdlineTooLong',
    );
    expectBootError(() => loadLinux(mem, input(fakeBzImage(), { cmdline: 'a\0b' })), 'InvalidCmdline');
    expectBootError(
      () => loadLinux(mem, input(fakeBzImage(), { initramfs: new Uint8Array(60 * MiB) })),
      'InitramfsTooLarge',
    );
    expectBootError(
      () => loadLinux(testGuestMemory(8 * MiB), input(fakeBzImage({ initSize: 16 * MiB }))),
      'MemoryTooSmall',
    );
    expectBootError(() => loadLinux(mem, input(fakeBzImage(), { vcpus: 255 })), 'TooManyVcpus');
  });

  it('does not touch guest memory when the input is rejected', () => {
    const mem = testGuestMemory(64 * MiB);
    expectBootError(
      () => loadLinux(mem, input(fakeBzImage(), { initramfs: new Uint8Array(62 * MiB) })),
      'InitramfsTooLarge',
    );
    expect(mem.read(at(0x100000), 4096).every((b) => b === 0)).to.equal(true);
    expect(mem.read(at(X86Layout.ZERO_PAGE), 4096).every((b) => b === 0)).to.equal(true);
  });
});

describe('x86 loadLinux: ELF vmlinux through PVH', () => {
  it('loads segments, zeroes bss and writes hvm_start_info', () => {
    const mem = testGuestMemory(64 * MiB);
    mem.fill(at(0x100_0000 + 4096), 0x2000, 0xee); // bss must be cleared
    const data = new Uint8Array(4096).map((_, i) => (i * 7) & 0xff);
    const kernel = fakeElfKernel({ segments: [{ paddr: 0x100_0000n, data, memsz: 0x3000n }], pvhEntry: 0x100_0040n });
    const initrd = new Uint8Array(3 * 4096 + 1).fill(0x11);
    const plan = loadLinux(mem, input(kernel, { initramfs: initrd, cmdline: 'console=ttyS0 quiet' }));

    expect(plan.protocol).to.equal('pvh');
    expect(plan.entry).to.equal(0x100_0040n);
    expect(plan.bootInfo).to.equal(X86Layout.PVH_INFO);
    expect(plan.cr3).to.equal(undefined);
    expect(mem.read(at(0x100_0000), 4096)).to.deep.equal(data);
    expect(mem.read(at(0x100_0000 + 4096), 0x2000).every((b) => b === 0)).to.equal(true);
    expect(plan.kernel).to.deep.equal({ start: 0x100_0000n, end: 0x100_3000n });

    const si = X86Layout.PVH_INFO;
    expect(mem.readU32(at(si))).to.equal(HVM_START_MAGIC);
    expect(mem.readU32(at(si + 4n))).to.equal(1);
    expect(mem.readU32(at(si + 12n))).to.equal(1, 'nr_modules');
    expect(readCString(mem, mem.readU64(at(si + 24n)))).to.equal('console=ttyS0 quiet');
    const mod = mem.readU64(at(si + 16n));
    expect(mem.readU64(at(mod))).to.equal(plan.initramfs!.address);
    expect(mem.readU64(at(mod + 8n))).to.equal(BigInt(initrd.length));
    expect(plan.initramfs!.address % 4096n).to.equal(0n);
    expect(mem.read(at(plan.initramfs!.address), initrd.length)).to.deep.equal(initrd);
    const mm = mem.readU64(at(si + 40n));
    const count = mem.readU32(at(si + 48n));
    expect(count).to.equal(4);
    const entries = Array.from({ length: count }, (_, i) => ({
      addr: mem.readU64(at(mm + BigInt(i * 24))),
      size: mem.readU64(at(mm + BigInt(i * 24 + 8))),
      type: mem.readU32(at(mm + BigInt(i * 24 + 16))),
    }));
    expect(entries[2]).to.deep.equal({ addr: 0x100000n, size: 63n * 1024n * 1024n, type: E820_RAM });
    // The MP table is in the EBDA.
    expect(String.fromCharCode(...mem.read(at(X86Layout.EBDA_START), 4))).to.equal('_MP_');
  });

  it('accepts a 4-byte PVH entry note', () => {
    const plan = loadLinux(testGuestMemory(64 * MiB), input(fakeElfKernel({ pvhEntry: 0x100_0010n, pvhEntrySize: 4 })));
    expect(plan.entry).to.equal(0x100_0010n);
  });

  it('rejects bad ELF kernels', () => {
    const mem = testGuestMemory(64 * MiB);
    expectBootError(() => loadLinux(mem, input(fakeElfKernel({ pvhEntry: null }))), 'NoPvhEntry');
    expectBootError(() => loadLinux(mem, input(fakeElfKernel({ pvhEntry: null }), { protocol: 'pvh' })), 'NoPvhEntry');
    expectBootError(() => loadLinux(mem, input(fakeElfKernel(), { protocol: 'bzimage' })), 'UnsupportedKernel');
    expectBootError(() => loadLinux(mem, input(fakeElfKernel({ machine: 3 }))), 'UnsupportedKernel');
    const full = fakeElfKernel();
    expectBootError(() => loadLinux(mem, input(full.subarray(0, full.length - 100))), 'TruncatedKernel');
    expectBootError(() => loadLinux(mem, input(full.subarray(0, 100))), 'TruncatedKernel');
    expectBootError(
      () => loadLinux(mem, input(fakeElfKernel({ segments: [{ paddr: 0x8000n, data: new Uint8Array(16) }] }))),
      'KernelOutOfMemory',
    );
    expectBootError(
      () =>
        loadLinux(
          mem,
          input(fakeElfKernel({ segments: [{ paddr: 0x100_0000n, data: new Uint8Array(16), memsz: 1n << 62n }] })),
        ),
      'MemoryTooSmall',
    );
    expectBootError(
      () =>
        loadLinux(
          mem,
          input(
            fakeElfKernel({ segments: [{ paddr: 0xffff_ffff_ffff_f000n, data: new Uint8Array(16), memsz: 0x2000n }] }),
          ),
        ),
      'MemoryTooSmall',
    );
    expectBootError(
      () => loadLinux(mem, input(fakeElfKernel(), { initramfs: new Uint8Array(63 * MiB) })),
      'InitramfsTooLarge',
    );
    // Found by the kernel-elf fuzz target: a kernel whose only segment is empty loads nothing.
    const empty = fakeElfKernel({ segments: [{ paddr: 0x100_0000n, data: new Uint8Array(0), memsz: 0n }] });
    expectBootError(() => loadLinux(mem, input(empty)), 'TruncatedKernel');
  });
});
