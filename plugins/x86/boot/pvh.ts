import { GuestAddress } from '../../../core/address.js';
import type { GuestMemory } from '../../../core/memory/guest-memory.js';
import { X86Layout } from '../layout.js';
import { X86BootError } from '../errors.js';
import type { E820Entry } from '../platform/memory-map.js';

/** xen/include/public/arch-x86/hvm/start_info.h */
export const HVM_START_MAGIC = 0x336e_c578;
/** The hvm_start_info version written (1: with the memory map). */
export const HVM_START_VERSION = 1;
/** sizeof(struct hvm_start_info), version 1. */
export const START_INFO_SIZE = 56;
/** sizeof(struct hvm_modlist_entry): address, size, command line, reserved. */
export const MODLIST_ENTRY_SIZE = 32;
/** sizeof(struct hvm_memmap_table_entry): address, size, type, reserved. */
export const MEMMAP_ENTRY_SIZE = 24;
/** Everything must fit the page at PVH_INFO (the zero page follows). */
const PAGE_SIZE = 0x1000;

/**
 * What buildStartInfo puts in hvm_start_info: guest-physical addresses of the command line, the initramfs and the RSDP,
 * and the memory map.
 */
export interface StartInfoInput {
  cmdlineAddress: bigint;
  ramdisk?: { address: bigint; size: bigint };
  memmap: readonly E820Entry[];
  /** The ACPI RSDP, when the machine has ACPI tables. */
  rsdp?: bigint;
}

/**
 * Builds hvm_start_info, its module list (the initramfs) and its memory map as one
 * page to be written at `base` (X86Layout.PVH_INFO); pointers inside are absolute.
 */
export function buildStartInfo(p: StartInfoInput, base: bigint = X86Layout.PVH_INFO): Uint8Array {
  const modlistOff = START_INFO_SIZE;
  const nrModules = p.ramdisk ? 1 : 0;
  const memmapOff = modlistOff + nrModules * MODLIST_ENTRY_SIZE;
  const size = memmapOff + p.memmap.length * MEMMAP_ENTRY_SIZE;
  if (size > PAGE_SIZE) {
    throw new X86BootError(
      'MemoryLayout',
      `the PVH start info with ${p.memmap.length} memory map entries does not fit one page`,
      { entries: p.memmap.length },
    );
  }
  const page = new Uint8Array(size);
  const dv = new DataView(page.buffer);
  dv.setUint32(0, HVM_START_MAGIC, true);
  dv.setUint32(4, HVM_START_VERSION, true);
  dv.setUint32(8, 0, true); // flags
  dv.setUint32(12, nrModules, true);
  dv.setBigUint64(16, nrModules ? base + BigInt(modlistOff) : 0n, true);
  dv.setBigUint64(24, p.cmdlineAddress, true);
  dv.setBigUint64(32, p.rsdp ?? 0n, true); // rsdp_paddr (0: Linux scans for it)
  dv.setBigUint64(40, base + BigInt(memmapOff), true);
  dv.setUint32(48, p.memmap.length, true);
  if (p.ramdisk) {
    dv.setBigUint64(modlistOff, p.ramdisk.address, true);
    dv.setBigUint64(modlistOff + 8, p.ramdisk.size, true);
    // cmdline_paddr 0, reserved 0
  }
  p.memmap.forEach((e, i) => {
    const o = memmapOff + i * MEMMAP_ENTRY_SIZE;
    dv.setBigUint64(o, e.addr, true);
    dv.setBigUint64(o + 8, e.size, true);
    dv.setUint32(o + 16, e.type, true);
  });
  return page;
}

/** Writes a built start-info page at `base` in guest memory and returns `base` (the PVH entry's ebx). */
export function writeStartInfo(mem: GuestMemory, info: Uint8Array, base: bigint = X86Layout.PVH_INFO): bigint {
  mem.write(GuestAddress.of(base), info);
  return base;
}
