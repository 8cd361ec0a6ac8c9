/**
 * Where the arm64 machine puts the kernel, the initramfs and the device tree in guest RAM (booting.rst):
 * the kernel at a 2 MiB-aligned base + text_offset near RAM's start; the device tree (≤ 2 MiB, 8-byte
 * aligned) in the last 2 MiB block of RAM; the initramfs page-aligned right below that block. Checked
 * against each other and RAM before anything is written.
 */
import { Arm64Error } from '../errors.js';
import type { Arm64ImageHeader } from './image.js';

const MIB2 = 2n << 20n,
  PAGE = 4096n;

/** The largest device tree the boot protocol allows. */
export const ARM64_FDT_MAX = 2 << 20;

/** Addresses of a boot. */
export interface Arm64BootPlan {
  readonly kernel: bigint;
  readonly kernelEnd: bigint;
  readonly fdt: bigint;
  readonly initrd?: { readonly start: bigint; readonly end: bigint };
}

/** Plans a boot in RAM [ramStart, ramStart + ramSize); `fdtMax` reserves the device tree's room. */
export function planArm64Boot(
  ram: { start: bigint; size: bigint },
  header: Arm64ImageHeader,
  initrdSize: number | undefined,
): Arm64BootPlan {
  const noRoom = (why: string) =>
    new Arm64Error('NoRoom', `arm64 boot: ${why} in ${ram.size >> 20n} MiB of RAM`, { ram: ram.size.toString() });
  if (ram.start % MIB2) throw noRoom('RAM does not start on a 2 MiB boundary');
  const ramEnd = ram.start + ram.size;
  const kernel = ram.start + header.textOffset;
  const kernelEnd = kernel + header.imageSize;
  // the device tree's 2 MiB block: the last whole one of RAM
  const fdt = ((ramEnd - MIB2) / MIB2) * MIB2;
  if (fdt < kernelEnd) throw noRoom(`the kernel (${header.imageSize} bytes) and the device tree do not fit`);
  if (initrdSize === undefined) return { kernel, kernelEnd, fdt };
  const size = BigInt(initrdSize);
  const start = ((fdt - size) / PAGE) * PAGE;
  if (size <= 0n || start < kernelEnd) throw noRoom(`the kernel and a ${initrdSize}-byte initramfs do not fit`);
  return { kernel, kernelEnd, fdt, initrd: { start, end: start + size } };
}
