import { X86BootError, hex } from '../errors.js';
import { asBootImage, type BootImage } from './image.js';

/** Offsets inside a bzImage file (= inside boot_params, which starts with the same layout). */
export const Hdr = {
  SETUP_SECTS: 0x1f1,
  SYSSIZE: 0x1f4,
  VID_MODE: 0x1fa,
  BOOT_FLAG: 0x1fe,
  JUMP: 0x200,
  HEADER: 0x202,
  VERSION: 0x206,
  TYPE_OF_LOADER: 0x210,
  LOADFLAGS: 0x211,
  CODE32_START: 0x214,
  RAMDISK_IMAGE: 0x218,
  RAMDISK_SIZE: 0x21c,
  HEAP_END_PTR: 0x224,
  CMD_LINE_PTR: 0x228,
  INITRD_ADDR_MAX: 0x22c,
  KERNEL_ALIGNMENT: 0x230,
  RELOCATABLE_KERNEL: 0x234,
  XLOADFLAGS: 0x236,
  CMDLINE_SIZE: 0x238,
  HARDWARE_SUBARCH: 0x23c,
  SETUP_DATA: 0x250,
  PREF_ADDRESS: 0x258,
  INIT_SIZE: 0x260,
  /** boot_params reserves up to here for the setup header (edd_mbr_sig_buffer follows). */
  HEADER_LIMIT: 0x290,
} as const;

/** The setup header's signature ("HdrS", little-endian) at 0x202. */
export const HDRS_MAGIC = 0x5372_6448; // "HdrS"
/** The boot sector signature at 0x1fe. */
export const BOOT_FLAG_MAGIC = 0xaa55;
/** loadflags bit: the protected-mode kernel is loaded at 1 MiB (every bzImage). */
export const LOADED_HIGH = 0x01;
/** loadflags bit: heap_end_ptr is valid (set by the loader). */
export const CAN_USE_HEAP = 0x80;
/** xloadflags bit: the kernel has the 64-bit entry point startup_64. */
export const XLF_KERNEL_64 = 0x01;
/** Oldest boot protocol accepted: 2.06 brought cmdline_size. */
export const MIN_PROTOCOL = 0x0206;
/** Offset of startup_64 from the start of the protected-mode kernel. */
export const STARTUP_64_OFFSET = 0x200n;
/** initrd_addr_max for kernels whose header leaves it 0 (boot.rst). */
const DEFAULT_INITRD_ADDR_MAX = 0x37ff_ffffn;

/** The setup header fields the loader uses, read and validated from a bzImage. */
export interface BzImageHeader {
  /** Protocol version, e.g. 0x020f for 2.15. */
  version: number;
  setupSects: number;
  /** Bytes before the protected-mode kernel: (setup_sects + 1) * 512. */
  setupSize: number;
  /** Size of the protected-mode kernel in the file. */
  kernelSize: number;
  loadflags: number;
  xloadflags: number;
  relocatable: boolean;
  kernelAlignment: bigint;
  prefAddress: bigint;
  /** Memory the kernel needs from its (aligned) run address while it decompresses and initialises. */
  initSize: bigint;
  /** Highest address the initramfs may occupy (inclusive). */
  initrdAddrMax: bigint;
  /** Longest command line the kernel takes, NUL excluded. */
  cmdlineSize: number;
  /** The setup header bytes [0x1f1, end), to be copied into the zero page. */
  headerBytes: Uint8Array;
}

/** True when the image carries the "HdrS" setup header magic. */
export function looksLikeBzImage(image: Uint8Array): boolean {
  if (image.length < Hdr.HEADER + 4) return false;
  const dv = new DataView(image.buffer, image.byteOffset, image.byteLength);
  return dv.getUint32(Hdr.HEADER, true) === HDRS_MAGIC;
}

/**
 * Parses and validates a bzImage's setup header (Documentation/arch/x86/boot.rst).
 * Every size is checked against the file: a truncated or hostile image gives an
 * X86BootError, never an out-of-range read.
 */
export function parseBzImage(file: Uint8Array | BootImage): BzImageHeader {
  const whole = asBootImage(file);
  const length = whole.length;
  // every field read lies below HEADER_LIMIT; the rest of the file is the kernel, copied later by the loader
  const image = whole.bytes(0, Math.min(length, Hdr.HEADER_LIMIT));
  if (!looksLikeBzImage(image)) {
    throw new X86BootError('UnknownKernelFormat', 'the kernel is not a bzImage: no "HdrS" magic at offset 0x202', {
      length: length,
    });
  }
  if (length < Hdr.INIT_SIZE + 4) {
    throw new X86BootError('TruncatedKernel', `the bzImage is ${length} bytes, too short for its setup header`, {
      length: length,
    });
  }
  const dv = new DataView(image.buffer, image.byteOffset, image.byteLength);
  const u8 = (o: number) => dv.getUint8(o);
  const u16 = (o: number) => dv.getUint16(o, true);
  const u32 = (o: number) => dv.getUint32(o, true);

  if (u16(Hdr.BOOT_FLAG) !== BOOT_FLAG_MAGIC) {
    throw new X86BootError('UnknownKernelFormat', `the bzImage's boot_flag is ${hex(u16(Hdr.BOOT_FLAG))}, not 0xaa55`, {
      bootFlag: u16(Hdr.BOOT_FLAG),
    });
  }
  const version = u16(Hdr.VERSION);
  const versionText = `${version >> 8}.${(version & 0xff).toString().padStart(2, '0')}`;
  if (version < MIN_PROTOCOL) {
    throw new X86BootError(
      'UnsupportedKernel',
      `the bzImage speaks boot protocol ${versionText}; at least 2.06 is needed`,
      { version },
    );
  }
  const loadflags = u8(Hdr.LOADFLAGS);
  if ((loadflags & LOADED_HIGH) === 0) {
    throw new X86BootError(
      'UnsupportedKernel',
      'the bzImage is a zImage (LOADED_HIGH clear): it must be loaded at 0x10000, which this loader does not do',
      { loadflags },
    );
  }
  const xloadflags = u16(Hdr.XLOADFLAGS);
  if (version < 0x020c || (xloadflags & XLF_KERNEL_64) === 0) {
    throw new X86BootError(
      'UnsupportedKernel',
      `the bzImage (protocol ${versionText}) has no 64-bit entry point (XLF_KERNEL_64); build a 64-bit kernel`,
      { version, xloadflags },
    );
  }

  let setupSects = u8(Hdr.SETUP_SECTS);
  if (setupSects === 0) setupSects = 4;
  const setupSize = (setupSects + 1) * 512;
  if (length <= setupSize) {
    throw new X86BootError(
      'TruncatedKernel',
      `the bzImage is ${length} bytes but its setup code alone takes ${setupSize}`,
      { length: length, setupSize },
    );
  }
  const kernelSize = length - setupSize;
  const syssizeBytes = BigInt(u32(Hdr.SYSSIZE)) * 16n;
  if (syssizeBytes === 0n || syssizeBytes > BigInt(kernelSize)) {
    throw new X86BootError(
      'TruncatedKernel',
      `the bzImage's syssize says ${syssizeBytes} bytes of kernel but the file holds ${kernelSize}`,
      { syssize: syssizeBytes, kernelSize },
    );
  }

  const headerEnd = Math.min(Hdr.HEADER + u8(Hdr.JUMP + 1), Hdr.HEADER_LIMIT);
  if (headerEnd < Hdr.INIT_SIZE + 4) {
    throw new X86BootError('TruncatedKernel', `the setup header ends at ${hex(headerEnd)}, before init_size`, {
      headerEnd,
    });
  }

  const kernelAlignment = BigInt(u32(Hdr.KERNEL_ALIGNMENT));
  const initrdMax = BigInt(u32(Hdr.INITRD_ADDR_MAX));
  const initSize = BigInt(u32(Hdr.INIT_SIZE));
  if (initSize === 0n) {
    throw new X86BootError('TruncatedKernel', 'the bzImage declares an init_size of 0', {});
  }
  const cmdlineSize = u32(Hdr.CMDLINE_SIZE);
  return {
    version,
    setupSects,
    setupSize,
    kernelSize,
    loadflags,
    xloadflags,
    relocatable: u8(Hdr.RELOCATABLE_KERNEL) !== 0,
    kernelAlignment: kernelAlignment === 0n ? 0x20_0000n : kernelAlignment,
    prefAddress: dv.getBigUint64(Hdr.PREF_ADDRESS, true),
    initSize,
    initrdAddrMax: initrdMax === 0n ? DEFAULT_INITRD_ADDR_MAX : initrdMax,
    cmdlineSize,
    headerBytes: image.slice(Hdr.SETUP_SECTS, headerEnd),
  };
}

const alignUp = (v: bigint, a: bigint): bigint => ((v + a - 1n) / a) * a;

/**
 * The guest range a bzImage loaded at `loadAddress` uses before it has set up its
 * own memory map: the compressed image itself, and init_size bytes from where it
 * decompresses (its load address aligned to kernel_alignment, not below pref_address
 * — the kernel's compressed/head_64.S).
 */
export function bzImageFootprint(h: BzImageHeader, loadAddress: bigint): { start: bigint; end: bigint } {
  const runAt = h.relocatable ? alignUp(loadAddress, h.kernelAlignment) : h.prefAddress;
  const run = runAt > h.prefAddress ? runAt : h.prefAddress;
  const imageEnd = loadAddress + BigInt(h.kernelSize);
  const runEnd = run + h.initSize;
  return { start: loadAddress, end: imageEnd > runEnd ? imageEnd : runEnd };
}
