import { X86Layout } from '../layout.js';
import { X86BootError, hex } from '../errors.js';

/** E820 type 1: usable RAM. */
export const E820_RAM = 1;
/** E820 type 2: reserved, not for the OS. */
export const E820_RESERVED = 2;

/** One E820 memory map entry: guest-physical start, size in bytes, type (E820_*). */
export interface E820Entry {
  addr: bigint;
  size: bigint;
  type: number;
}

/** A guest RAM region: guest-physical start and size in bytes. */
export interface RamRegion {
  start: bigint;
  size: bigint;
}

const FOUR_GIB = 1n << 32n;
/** Below this the machine cannot hold the boot structures and a kernel (checked again per image). */
export const MIN_MEMORY = 4n << 20n;

/**
 * Where `size` bytes of guest RAM go on x86: [0, MMIO32_START) first, the rest from 4 GiB.
 * The hole [MMIO32_START, 4 GiB) holds device windows, the IOAPIC, the LAPIC and KVM's pages.
 */
export function ramRegions(size: bigint): RamRegion[] {
  if (size < MIN_MEMORY) {
    throw new X86BootError(
      'MemoryTooSmall',
      `guest memory of ${size} bytes is below the minimum of ${MIN_MEMORY} (4 MiB)`,
      { size, minimum: MIN_MEMORY },
    );
  }
  if (size % 4096n !== 0n) {
    throw new X86BootError('MemoryTooSmall', `guest memory size ${size} is not a multiple of 4 KiB`, { size });
  }
  const low = size < X86Layout.MMIO32_START ? size : X86Layout.MMIO32_START;
  const regions: RamRegion[] = [{ start: 0n, size: low }];
  if (size > low) regions.push({ start: FOUR_GIB, size: size - low });
  return regions;
}

/** End of the RAM region that starts at 0 (the RAM the 32-bit boot structures can use). */
export function lowRamEnd(regions: readonly RamRegion[]): bigint {
  const r = regions.find((x) => x.start === 0n);
  if (!r) throw new X86BootError('MemoryTooSmall', 'guest memory has no region at address 0', {});
  return r.size;
}

/**
 * The e820 map the guest sees: RAM as given, except that the EBDA and the legacy
 * VGA/BIOS area [EBDA_START, 1 MiB) are reserved, and KVM's identity-map and TSS
 * pages in the 32-bit hole are marked reserved so nothing is placed over them.
 */
export function e820Map(regions: readonly RamRegion[]): E820Entry[] {
  const out: E820Entry[] = [];
  for (const r of [...regions].sort((a, b) => (a.start < b.start ? -1 : 1))) {
    const end = r.start + r.size;
    if (r.start < X86Layout.HIGH_MEMORY && end > X86Layout.EBDA_START) {
      if (r.start < X86Layout.EBDA_START)
        out.push({ addr: r.start, size: X86Layout.EBDA_START - r.start, type: E820_RAM });
      const resEnd = end < X86Layout.HIGH_MEMORY ? end : X86Layout.HIGH_MEMORY;
      const resStart = r.start > X86Layout.EBDA_START ? r.start : X86Layout.EBDA_START;
      out.push({ addr: resStart, size: resEnd - resStart, type: E820_RESERVED });
      if (end > X86Layout.HIGH_MEMORY)
        out.push({ addr: X86Layout.HIGH_MEMORY, size: end - X86Layout.HIGH_MEMORY, type: E820_RAM });
    } else {
      out.push({ addr: r.start, size: r.size, type: E820_RAM });
    }
  }
  // Identity-map page + 3 TSS pages, contiguous.
  out.push({
    addr: X86Layout.KVM_IDENTITY_MAP,
    size: X86Layout.KVM_TSS + 0x3000n - X86Layout.KVM_IDENTITY_MAP,
    type: E820_RESERVED,
  });
  out.sort((a, b) => (a.addr < b.addr ? -1 : 1));
  for (let i = 1; i < out.length; i++) {
    if (out[i - 1].addr + out[i - 1].size > out[i].addr) {
      throw new X86BootError('MemoryLayout', `guest RAM overlaps a reserved range at ${hex(out[i].addr)}`, {
        addr: out[i].addr,
      });
    }
  }
  return out;
}
