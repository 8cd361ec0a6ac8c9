import { X86BootError, hex } from '../errors.js';

const PAGE = 4096n;

/** Where an initramfs may go (guest-physical addresses). */
export interface InitramfsLimits {
  /** End of RAM at 0 (exclusive). */
  lowRamEnd: bigint;
  /** Highest address the kernel accepts for the initramfs (inclusive; bzImage initrd_addr_max). */
  addrMax: bigint;
  /** First byte above everything the kernel needs while booting. */
  kernelEnd: bigint;
}

/**
 * Places an initramfs of `size` bytes page-aligned as high as possible below
 * min(addrMax + 1, lowRamEnd), above the kernel (what boot.rst recommends and
 * what keeps it clear of the kernel's decompression area).
 */
export function placeInitramfs(size: bigint, l: InitramfsLimits): bigint {
  const cap = l.addrMax + 1n < l.lowRamEnd ? l.addrMax + 1n : l.lowRamEnd;
  const room = cap > l.kernelEnd ? cap - l.kernelEnd : 0n;
  if (size <= 0n)
    throw new X86BootError(
      'InitramfsTooLarge',
      `an initramfs of ${size} bytes is empty; leave boot.initramfs out instead`,
      { size },
    );
  if (size > room) {
    throw new X86BootError(
      'InitramfsTooLarge',
      `the initramfs is ${size} bytes but only ${room} fit between the kernel (ends ${hex(l.kernelEnd)}) and ${hex(cap)}; give the VM more memory or use a smaller initramfs`,
      { size, room, kernelEnd: l.kernelEnd, cap },
    );
  }
  const addr = ((cap - size) / PAGE) * PAGE;
  if (addr < l.kernelEnd) {
    throw new X86BootError(
      'InitramfsTooLarge',
      `the initramfs (${size} bytes) does not fit page-aligned above the kernel`,
      { size, kernelEnd: l.kernelEnd, cap },
    );
  }
  return addr;
}
