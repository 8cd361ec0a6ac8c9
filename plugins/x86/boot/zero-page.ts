import { GuestAddress } from '../../../core/address.js';
import type { GuestMemory } from '../../../core/memory/guest-memory.js';
import { X86Layout } from '../layout.js';
import { X86BootError } from '../errors.js';
import type { E820Entry } from '../platform/memory-map.js';
import { Hdr } from './bzimage.js';

/** boot_params (the "zero page") offsets outside the setup header. */
export const ZeroPage = {
  SIZE: 0x1000,
  ACPI_RSDP_ADDR: 0x070,
  EXT_RAMDISK_IMAGE: 0x0c0,
  EXT_RAMDISK_SIZE: 0x0c4,
  EXT_CMD_LINE_PTR: 0x0c8,
  E820_ENTRIES: 0x1e8,
  E820_TABLE: 0x2d0,
  E820_MAX: 128,
  E820_ENTRY_SIZE: 20,
} as const;

/** type_of_loader for a boot loader without an assigned id. */
export const LOADER_TYPE_UNDEFINED = 0xff;
/** vid_mode "normal" (80x25): no mode switch; the console is the serial port. */
export const VID_MODE_NORMAL = 0xffff;

/**
 * What buildZeroPage puts in boot_params: the image's setup header, where the kernel, command line and initramfs are
 * (guest-physical), the e820 map and the RSDP.
 */
export interface ZeroPageInput {
  /** The image's setup header bytes from offset 0x1f1. */
  headerBytes: Uint8Array;
  loadAddress: bigint;
  cmdlineAddress: bigint;
  cmdlineSize: number;
  ramdisk?: { address: bigint; size: bigint };
  e820: readonly E820Entry[];
  /** The ACPI RSDP (boot_params.acpi_rsdp_addr), when the machine has ACPI tables. */
  rsdp?: bigint;
}

/** Builds boot_params for the 64-bit boot protocol (boot.rst "64-bit Boot Protocol"). */
export function buildZeroPage(p: ZeroPageInput): Uint8Array {
  const page = new Uint8Array(ZeroPage.SIZE);
  const dv = new DataView(page.buffer);
  page.set(p.headerBytes.subarray(0, Hdr.HEADER_LIMIT - Hdr.SETUP_SECTS), Hdr.SETUP_SECTS);

  dv.setUint16(Hdr.VID_MODE, VID_MODE_NORMAL, true);
  dv.setUint8(Hdr.TYPE_OF_LOADER, LOADER_TYPE_UNDEFINED);
  dv.setUint8(Hdr.LOADFLAGS, dv.getUint8(Hdr.LOADFLAGS) | 0x80 /* CAN_USE_HEAP */);
  // heap_end_ptr: end of the setup heap relative to the real-mode code start (unused by the 64-bit entry).
  dv.setUint16(Hdr.HEAP_END_PTR, 0xfe00, true);
  dv.setUint32(Hdr.CODE32_START, u32(p.loadAddress, 'kernel load address'), true);
  dv.setUint32(Hdr.CMD_LINE_PTR, u32(p.cmdlineAddress, 'command line address'), true);
  dv.setUint32(Hdr.CMDLINE_SIZE, p.cmdlineSize, true);
  dv.setUint32(Hdr.HARDWARE_SUBARCH, 0, true); // X86_SUBARCH_PC
  dv.setBigUint64(Hdr.SETUP_DATA, 0n, true);
  if (p.rsdp !== undefined) dv.setBigUint64(ZeroPage.ACPI_RSDP_ADDR, p.rsdp, true);
  if (p.ramdisk) {
    const a = p.ramdisk.address,
      s = p.ramdisk.size;
    dv.setUint32(Hdr.RAMDISK_IMAGE, Number(a & 0xffff_ffffn), true);
    dv.setUint32(Hdr.RAMDISK_SIZE, Number(s & 0xffff_ffffn), true);
    dv.setUint32(ZeroPage.EXT_RAMDISK_IMAGE, Number((a >> 32n) & 0xffff_ffffn), true);
    dv.setUint32(ZeroPage.EXT_RAMDISK_SIZE, Number((s >> 32n) & 0xffff_ffffn), true);
  }

  if (p.e820.length > ZeroPage.E820_MAX) {
    throw new X86BootError(
      'MemoryLayout',
      `the memory map has ${p.e820.length} entries; the zero page holds ${ZeroPage.E820_MAX}`,
      { entries: p.e820.length },
    );
  }
  dv.setUint8(ZeroPage.E820_ENTRIES, p.e820.length);
  p.e820.forEach((e, i) => {
    const o = ZeroPage.E820_TABLE + i * ZeroPage.E820_ENTRY_SIZE;
    dv.setBigUint64(o, e.addr, true);
    dv.setBigUint64(o + 8, e.size, true);
    dv.setUint32(o + 16, e.type, true);
  });
  return page;
}

/** Writes a built zero page at X86Layout.ZERO_PAGE and returns that address (the 64-bit entry's rsi). */
export function writeZeroPage(mem: GuestMemory, page: Uint8Array): bigint {
  mem.write(GuestAddress.of(X86Layout.ZERO_PAGE), page);
  return X86Layout.ZERO_PAGE;
}

function u32(v: bigint, what: string): number {
  if (v < 0n || v > 0xffff_ffffn)
    throw new X86BootError('MemoryLayout', `${what} 0x${v.toString(16)} does not fit 32 bits`, { value: v });
  return Number(v);
}
