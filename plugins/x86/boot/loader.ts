import { GuestAddress } from '../../../core/address.js';
import type { GuestMemory } from '../../../core/memory/guest-memory.js';
import { X86Layout } from '../layout.js';
import { X86BootError, hex } from '../errors.js';
import { e820Map, lowRamEnd, type RamRegion } from '../platform/memory-map.js';
import type { BuiltAcpiTables } from '../../../core/acpi/tables.js';
import { writeAcpiTables } from '../platform/acpi.js';
import { buildMpTable, writeMpTable } from '../platform/mptable.js';
import { writeBootGdt } from '../cpu/gdt.js';
import { writeIdentityPageTables } from '../cpu/paging.js';
import { STARTUP_64_OFFSET, bzImageFootprint, looksLikeBzImage, parseBzImage } from './bzimage.js';
import { encodeCmdline, writeCmdline } from './cmdline.js';
import { loadElfSegments, looksLikeElf, parseElf } from './elf.js';
import { asBootImage, type BootImage } from './image.js';
import { placeInitramfs } from './initramfs.js';
import { buildStartInfo, writeStartInfo } from './pvh.js';
import { buildZeroPage, writeZeroPage } from './zero-page.js';
import { markStartup } from '../../../core/vmm/timings.js';

/**
 * How to enter the kernel: 'bzimage' (Linux boot protocol, 64-bit entry), 'pvh' (ELF with a Xen PVH note, 32-bit
 * entry), or 'auto' (picked from the file).
 */
export type BootProtocol = 'auto' | 'bzimage' | 'pvh';

/**
 * Everything loadLinux needs: the kernel and initramfs bytes, the command line, the protocol, the vCPUs and CPU
 * identity for the MP table, and the ACPI options.
 */
export interface BootInput {
  /** The kernel file: its bytes, or a BootImage that reads an open file (withBootFiles). */
  kernel: Uint8Array | BootImage;
  initramfs?: Uint8Array | BootImage;
  cmdline: string;
  protocol: BootProtocol;
  vcpus: number;
  /** CPUID leaf 1 eax/edx for the MP table's processor entries. */
  cpuSignature?: number;
  cpuFeatures?: number;
  /** ACPI tables built at ACPI_START (the acpi plugin's AcpiTables), written besides the MP table; none when absent. */
  acpi?: BuiltAcpiTables;
}

/** What the vCPU setup needs to enter the kernel. */
export interface BootPlan {
  protocol: 'bzimage' | 'pvh';
  /** bzImage: startup_64 (64-bit); PVH: the 32-bit PVH entry. */
  entry: bigint;
  /** bzImage: the zero page (rsi); PVH: hvm_start_info (ebx). */
  bootInfo: bigint;
  /** Identity page tables (bzImage only). */
  cr3?: bigint;
  gdtLimit: number;
  idtLimit: number;
  kernel: { start: bigint; end: bigint };
  initramfs?: { address: bigint; size: bigint };
  cmdlineAddress: bigint;
  /** Where the ACPI RSDP is, when tables were written. */
  rsdp?: bigint;
}

const FOUR_GIB = 1n << 32n;

/** Picks the boot protocol from the image's magic. */
export function detectProtocol(file: Uint8Array | BootImage, asked: BootProtocol): 'bzimage' | 'pvh' {
  const kernel = asBootImage(file);
  const head = kernel.bytes(0, Math.min(kernel.length, 0x1000)); // both magics lie in the first page
  const elf = looksLikeElf(head),
    bz = looksLikeBzImage(head);
  if (asked === 'pvh' && !elf) {
    throw new X86BootError(
      bz ? 'NoPvhEntry' : 'UnknownKernelFormat',
      bz
        ? 'boot.protocol is pvh but the kernel is a bzImage; PVH boots the ELF vmlinux'
        : 'boot.protocol is pvh but the kernel is not an ELF image',
      {},
    );
  }
  if (asked === 'bzimage' && !bz) {
    throw new X86BootError(
      elf ? 'UnsupportedKernel' : 'UnknownKernelFormat',
      elf
        ? 'boot.protocol is bzimage but the kernel is an ELF vmlinux; use protocol pvh or auto'
        : 'boot.protocol is bzimage but the kernel has no "HdrS" setup header',
      {},
    );
  }
  if (elf) return 'pvh';
  if (bz) return 'bzimage';
  throw new X86BootError(
    'UnknownKernelFormat',
    `the kernel (${kernel.length} bytes) is neither an ELF vmlinux nor a bzImage`,
    { length: kernel.length },
  );
}

function ramOf(mem: GuestMemory): RamRegion[] {
  return mem.regions.map((r) => ({ start: r.range.start.value, size: r.range.length }));
}

/**
 * Loads a Linux kernel and writes every boot structure: command line, e820 map in a
 * zero page (bzImage) or hvm_start_info (PVH), initramfs, GDT, identity page tables,
 * MP table and (unless turned off) ACPI tables. Everything is validated before the first byte is written to
 * guest memory except the kernel segments themselves, which are range-checked before any is copied.
 */
export function loadLinux(mem: GuestMemory, input: BootInput): BootPlan {
  const kernel = asBootImage(input.kernel);
  const initrd = input.initramfs === undefined ? undefined : asBootImage(input.initramfs);
  const protocol = detectProtocol(kernel, input.protocol);
  const ram = ramOf(mem);
  const lowEnd = lowRamEnd(ram);
  const e820 = e820Map(ram);
  const mpTable = buildMpTable({
    vcpus: input.vcpus,
    cpuSignature: input.cpuSignature,
    cpuFeatures: input.cpuFeatures,
  });
  const acpi = input.acpi;
  const rsdp = acpi?.rsdp;
  const initrdSize = initrd ? BigInt(initrd.length) : 0n;

  if (protocol === 'bzimage') {
    const h = parseBzImage(kernel);
    const cmdline = encodeCmdline(input.cmdline, h.cmdlineSize);
    const loadAt = X86Layout.HIGH_MEMORY;
    const fp = bzImageFootprint(h, loadAt);
    if (fp.end > lowEnd) {
      throw new X86BootError(
        'MemoryTooSmall',
        `the kernel needs guest RAM up to ${hex(fp.end)} to boot (init_size ${h.initSize}) but RAM below 4 GiB ends at ${hex(lowEnd)}; give the VM more memory`,
        { needed: fp.end, lowRamEnd: lowEnd },
      );
    }
    const initramfs =
      initrdSize > 0n
        ? {
            address: placeInitramfs(initrdSize, { lowRamEnd: lowEnd, addrMax: h.initrdAddrMax, kernelEnd: fp.end }),
            size: initrdSize,
          }
        : undefined;
    const page = buildZeroPage({
      headerBytes: h.headerBytes,
      loadAddress: loadAt,
      cmdlineAddress: X86Layout.CMDLINE,
      cmdlineSize: h.cmdlineSize,
      ramdisk: initramfs,
      e820,
      rsdp,
    });

    kernel.copyTo(mem, GuestAddress.of(loadAt), h.setupSize, h.kernelSize);
    markStartup('kernel copied');
    if (initramfs) initrd!.copyTo(mem, GuestAddress.of(initramfs.address), 0, initrd!.length);
    markStartup('initramfs copied');
    const cmdlineAddress = writeCmdline(mem, cmdline);
    const bootInfo = writeZeroPage(mem, page);
    const { gdtLimit, idtLimit } = writeBootGdt(mem);
    const cr3 = writeIdentityPageTables(mem);
    writeMpTable(mem, mpTable);
    if (acpi) writeAcpiTables(mem, acpi);
    return {
      protocol,
      entry: loadAt + STARTUP_64_OFFSET,
      bootInfo,
      cr3,
      gdtLimit,
      idtLimit,
      kernel: fp,
      initramfs,
      cmdlineAddress,
      rsdp,
    };
  }

  const elf = parseElf(kernel);
  if (elf.pvhEntry === undefined) {
    throw new X86BootError(
      'NoPvhEntry',
      'the ELF kernel has no XEN_ELFNOTE_PHYS32_ENTRY note; build it with CONFIG_PVH=y or boot its bzImage',
      {},
    );
  }
  if (elf.pvhEntry >= FOUR_GIB) {
    throw new X86BootError('UnsupportedKernel', `the PVH entry ${hex(elf.pvhEntry)} is not a 32-bit address`, {
      entry: elf.pvhEntry,
    });
  }
  const cmdline = encodeCmdline(input.cmdline);
  let kernelEnd = 0n;
  for (const s of elf.segments) if (s.paddr + s.memsz > kernelEnd) kernelEnd = s.paddr + s.memsz;
  if (kernelEnd > lowEnd) {
    throw new X86BootError(
      'MemoryTooSmall',
      `the kernel's segments reach ${hex(kernelEnd)} but RAM below 4 GiB ends at ${hex(lowEnd)}; give the VM more memory`,
      { needed: kernelEnd, lowRamEnd: lowEnd },
    );
  }
  const initramfs =
    initrdSize > 0n
      ? {
          address: placeInitramfs(initrdSize, { lowRamEnd: lowEnd, addrMax: FOUR_GIB - 1n, kernelEnd }),
          size: initrdSize,
        }
      : undefined;
  const info = buildStartInfo({ cmdlineAddress: X86Layout.CMDLINE, ramdisk: initramfs, memmap: e820, rsdp });

  const loaded = loadElfSegments(mem, kernel, elf);
  markStartup('kernel copied');
  if (initramfs) initrd!.copyTo(mem, GuestAddress.of(initramfs.address), 0, initrd!.length);
  markStartup('initramfs copied');
  const cmdlineAddress = writeCmdline(mem, cmdline);
  const bootInfo = writeStartInfo(mem, info);
  const { gdtLimit, idtLimit } = writeBootGdt(mem);
  writeMpTable(mem, mpTable);
  if (acpi) writeAcpiTables(mem, acpi);
  return {
    protocol,
    entry: elf.pvhEntry,
    bootInfo,
    gdtLimit,
    idtLimit,
    kernel: loaded,
    initramfs,
    cmdlineAddress,
    rsdp,
  };
}
