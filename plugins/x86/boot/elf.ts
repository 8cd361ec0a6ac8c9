import { GuestAddress } from '../../../core/address.js';
import type { GuestMemory } from '../../../core/memory/guest-memory.js';
import { X86Layout } from '../layout.js';
import { X86BootError, hex } from '../errors.js';
import { asBootImage, type BootImage } from './image.js';

const EM_X86_64 = 62;
const ELFCLASS64 = 2;
const ELFDATA2LSB = 1;
const ET_EXEC = 2;
const ET_DYN = 3;
const PT_LOAD = 1;
const PT_NOTE = 4;
const EHDR_SIZE = 64;
const PHDR_SIZE = 56;
/** Xen's note type for the 32-bit PVH entry point (xen/include/public/elfnote.h). */
export const XEN_ELFNOTE_PHYS32_ENTRY = 18;
const MAX_PHDRS = 1024;
/** The most of a PT_NOTE segment searched for the PVH note (a kernel's notes take a few hundred bytes). */
const MAX_NOTE_BYTES = 1 << 20;

/** One PT_LOAD segment: its file offset, physical load address, bytes in the file and in memory (the rest zeroed). */
export interface ElfSegment {
  offset: bigint;
  paddr: bigint;
  filesz: bigint;
  memsz: bigint;
}

/** A parsed ELF kernel: its entry point, PT_LOAD segments and PVH entry. */
export interface ElfImage {
  entry: bigint;
  segments: ElfSegment[];
  /** XEN_ELFNOTE_PHYS32_ENTRY, when the image has one. */
  pvhEntry?: bigint;
}

/** True when the bytes start with the ELF magic. */
export function looksLikeElf(image: Uint8Array): boolean {
  return image.length >= 4 && image[0] === 0x7f && image[1] === 0x45 && image[2] === 0x4c && image[3] === 0x46;
}

/**
 * Parses an ELF64 x86_64 kernel's program headers and PVH note. Every offset and
 * size is checked against the file in bigint; nothing is read outside it.
 */
export function parseElf(file: Uint8Array | BootImage): ElfImage {
  const image = asBootImage(file);
  const ehdr = image.bytes(0, Math.min(image.length, EHDR_SIZE));
  if (!looksLikeElf(ehdr))
    throw new X86BootError('UnknownKernelFormat', 'the kernel is not an ELF image (no \\x7fELF magic)', {});
  if (image.length < EHDR_SIZE)
    throw new X86BootError('TruncatedKernel', `the ELF image is ${image.length} bytes, shorter than its header`, {
      length: image.length,
    });
  const dv = new DataView(ehdr.buffer, ehdr.byteOffset, ehdr.byteLength);
  if (ehdr[4] !== ELFCLASS64 || ehdr[5] !== ELFDATA2LSB) {
    throw new X86BootError(
      'UnsupportedKernel',
      'the ELF kernel is not 64-bit little-endian (ELFCLASS64, ELFDATA2LSB)',
      { class: ehdr[4], data: ehdr[5] },
    );
  }
  const type = dv.getUint16(16, true);
  const machine = dv.getUint16(18, true);
  if (machine !== EM_X86_64)
    throw new X86BootError('UnsupportedKernel', `the ELF kernel is for machine ${machine}, not x86_64 (62)`, {
      machine,
    });
  if (type !== ET_EXEC && type !== ET_DYN)
    throw new X86BootError('UnsupportedKernel', `the ELF file has type ${type}, not an executable`, { type });
  const entry = dv.getBigUint64(24, true);
  const phoff = dv.getBigUint64(32, true);
  const phentsize = dv.getUint16(54, true);
  const phnum = dv.getUint16(56, true);
  const fileLen = BigInt(image.length);
  if (phnum === 0 || phnum > MAX_PHDRS)
    throw new X86BootError('TruncatedKernel', `the ELF kernel has ${phnum} program headers`, { phnum });
  if (phentsize < PHDR_SIZE)
    throw new X86BootError('TruncatedKernel', `ELF program header size ${phentsize} is below ${PHDR_SIZE}`, {
      phentsize,
    });
  if (phoff + BigInt(phnum) * BigInt(phentsize) > fileLen) {
    throw new X86BootError(
      'TruncatedKernel',
      `the ELF program headers (${phnum} at ${hex(phoff)}) run past the end of the ${image.length}-byte file`,
      { phoff, phnum, length: image.length },
    );
  }

  const phdrs = image.bytes(Number(phoff), Number(phoff) + phnum * phentsize);
  const ph = new DataView(phdrs.buffer, phdrs.byteOffset, phdrs.byteLength);
  const segments: ElfSegment[] = [];
  let pvhEntry: bigint | undefined;
  for (let i = 0; i < phnum; i++) {
    const o = i * phentsize;
    const pType = ph.getUint32(o, true);
    const offset = ph.getBigUint64(o + 8, true);
    const paddr = ph.getBigUint64(o + 24, true);
    const filesz = ph.getBigUint64(o + 32, true);
    const memsz = ph.getBigUint64(o + 40, true);
    const align = ph.getBigUint64(o + 48, true);
    if (pType !== PT_LOAD && pType !== PT_NOTE) continue;
    if (offset + filesz > fileLen) {
      throw new X86BootError(
        'TruncatedKernel',
        `ELF segment ${i} (${filesz} bytes at file offset ${hex(offset)}) runs past the end of the ${image.length}-byte file`,
        { index: i, offset, filesz },
      );
    }
    if (pType === PT_LOAD) {
      if (filesz > memsz)
        throw new X86BootError('TruncatedKernel', `ELF segment ${i} has p_filesz ${filesz} > p_memsz ${memsz}`, {
          index: i,
          filesz,
          memsz,
        });
      if (memsz > 0n) segments.push({ offset, paddr, filesz, memsz }); // an empty segment loads nothing
    } else {
      const noteEnd = Number(offset) + Math.min(Number(filesz), MAX_NOTE_BYTES);
      const found = findPvhNote(image.bytes(Number(offset), noteEnd), align === 8n ? 8 : 4);
      if (found !== undefined) pvhEntry = found;
    }
  }
  if (segments.length === 0)
    throw new X86BootError('TruncatedKernel', 'the ELF kernel has no loadable segment with bytes', {});
  return { entry, segments, pvhEntry };
}

/** Walks the notes of one PT_NOTE segment for ("Xen", XEN_ELFNOTE_PHYS32_ENTRY). */
function findPvhNote(notes: Uint8Array, align: number): bigint | undefined {
  const dv = new DataView(notes.buffer, notes.byteOffset, notes.byteLength);
  const pad = (n: number) => Math.ceil(n / align) * align;
  let o = 0;
  while (o + 12 <= notes.length) {
    const namesz = dv.getUint32(o, true);
    const descsz = dv.getUint32(o + 4, true);
    const type = dv.getUint32(o + 8, true);
    const nameAt = o + 12;
    const descAt = nameAt + pad(namesz);
    const next = descAt + pad(descsz);
    if (descAt > notes.length || descAt + descsz > notes.length) {
      throw new X86BootError('TruncatedKernel', `an ELF note at offset ${o} runs past the end of its segment`, {
        offset: o,
        namesz,
        descsz,
      });
    }
    if (isXenName(notes, nameAt, namesz) && type === XEN_ELFNOTE_PHYS32_ENTRY) {
      if (descsz === 4) return BigInt(dv.getUint32(descAt, true));
      if (descsz === 8) return dv.getBigUint64(descAt, true);
      throw new X86BootError('TruncatedKernel', `the PVH entry note has a ${descsz}-byte value (want 4 or 8)`, {
        descsz,
      });
    }
    if (next <= o) break;
    o = next;
  }
  return undefined;
}

/**
 * True when the note name at `at` (namesz bytes, the last one its NUL) is "Xen". Compared in place:
 * a hostile name can be as long as its segment, too long to decode into a string argument list.
 */
function isXenName(notes: Uint8Array, at: number, namesz: number): boolean {
  return namesz === 4 && notes[at] === 0x58 && notes[at + 1] === 0x65 && notes[at + 2] === 0x6e;
}

/**
 * Copies the PT_LOAD segments into guest memory and zeroes their bss. Every
 * segment must lie in guest RAM at or above 1 MiB (the boot structures live below).
 * Returns the first byte above the highest segment.
 */
export function loadElfSegments(
  mem: GuestMemory,
  file: Uint8Array | BootImage,
  elf: ElfImage,
): { start: bigint; end: bigint } {
  const image = asBootImage(file);
  let start = -1n,
    end = 0n;
  for (const [i, s] of elf.segments.entries()) {
    if (s.memsz === 0n) continue;
    if (s.paddr < X86Layout.HIGH_MEMORY) {
      throw new X86BootError(
        'KernelOutOfMemory',
        `ELF segment ${i} at ${hex(s.paddr)} is below 1 MiB, where the boot structures live`,
        { index: i, paddr: s.paddr },
      );
    }
    if (!mem.isValidRange(GuestAddress.of(s.paddr), s.memsz)) {
      throw new X86BootError(
        'KernelOutOfMemory',
        `ELF segment ${i} [${hex(s.paddr)}, +${s.memsz}) is outside guest RAM; give the VM more memory`,
        { index: i, paddr: s.paddr, memsz: s.memsz },
      );
    }
  }
  for (const s of elf.segments) {
    if (s.memsz === 0n) continue;
    const at = GuestAddress.of(s.paddr);
    if (s.filesz > 0n) image.copyTo(mem, at, Number(s.offset), Number(s.filesz));
    if (s.memsz > s.filesz) zero(mem, at.add(s.filesz), s.memsz - s.filesz);
    if (start < 0n || s.paddr < start) start = s.paddr;
    if (s.paddr + s.memsz > end) end = s.paddr + s.memsz;
  }
  return { start, end };
}

function zero(mem: GuestMemory, at: GuestAddress, len: bigint): void {
  const CHUNK = 1n << 30n;
  for (let done = 0n; done < len; done += CHUNK) {
    const n = len - done < CHUNK ? len - done : CHUNK;
    mem.fill(at.add(done), Number(n), 0);
  }
}
