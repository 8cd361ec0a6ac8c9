import { X86Layout } from './x86-layout.js';

/** Splits `size` bytes of RAM around the 32-bit MMIO hole: [0, MMIO32_START) then from 4 GiB. */
export function x86RamRegions(size: bigint): { start: bigint; size: bigint }[] {
  const low = size < X86Layout.MMIO32_START ? size : X86Layout.MMIO32_START;
  const out = [{ start: 0n, size: low }];
  if (size > low) out.push({ start: 1n << 32n, size: size - low });
  return out;
}
