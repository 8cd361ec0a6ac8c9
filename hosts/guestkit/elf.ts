import { GuestKitError } from './errors.js';

/** Xen ELF note type giving the 32-bit PVH entry point (include/xen/interface/elfnote.h). */
export const XEN_ELFNOTE_PHYS32_ENTRY = 18;

/** What inspectElf found in an ELF vmlinux: the ELF entry point, the PVH entry if any, and the PT_LOAD count. */
export interface ElfInfo {
  entry: bigint;
  /** Physical 32-bit PVH entry point, when the kernel has the Xen PHYS32_ENTRY note. */
  pvhEntry?: number;
  loadSegments: number;
}

/** Checks that `img` is an x86-64 ELF executable and finds its PVH entry note. Bounds-checked throughout. */
export function inspectElf(img: Uint8Array): ElfInfo {
  const bad = (why: string): never => {
    throw new GuestKitError('BadElf', `not a usable ELF vmlinux: ${why}`, { size: img.length });
  };
  if (img.length < 64) bad('too small');
  if (!(img[0] === 0x7f && img[1] === 0x45 && img[2] === 0x4c && img[3] === 0x46)) bad('no ELF magic');
  if (img[4] !== 2) bad('not ELF64');
  if (img[5] !== 1) bad('not little-endian');
  const dv = new DataView(img.buffer, img.byteOffset, img.byteLength);
  if (dv.getUint16(18, true) !== 62) bad(`machine ${dv.getUint16(18, true)} is not x86-64 (62)`);
  const entry = dv.getBigUint64(24, true);
  const phoff = dv.getBigUint64(32, true);
  const phentsize = dv.getUint16(54, true);
  const phnum = dv.getUint16(56, true);
  if (phentsize < 56) bad('program header entries too small');
  if (phoff + BigInt(phnum * phentsize) > BigInt(img.length)) bad('program headers lie outside the file');
  let pvhEntry: number | undefined;
  let loadSegments = 0;
  for (let i = 0; i < phnum; i++) {
    const ph = Number(phoff) + i * phentsize;
    const type = dv.getUint32(ph, true);
    const offset = dv.getBigUint64(ph + 8, true);
    const filesz = dv.getBigUint64(ph + 32, true);
    if (offset + filesz > BigInt(img.length)) bad(`segment ${i} lies outside the file (truncated?)`);
    if (type === 1) loadSegments++;
    if (type !== 4) continue; // PT_NOTE
    let p = Number(offset);
    const end = p + Number(filesz);
    while (p + 12 <= end) {
      const namesz = dv.getUint32(p, true);
      const descsz = dv.getUint32(p + 4, true);
      const ntype = dv.getUint32(p + 8, true);
      const name = p + 12;
      const desc = name + ((namesz + 3) & ~3);
      const next = desc + ((descsz + 3) & ~3);
      if (next > end || next <= p) break;
      const nameStr = Buffer.from(img.subarray(name, name + namesz))
        .toString('latin1')
        .replace(/\0+$/, '');
      if (nameStr === 'Xen' && ntype === XEN_ELFNOTE_PHYS32_ENTRY && descsz >= 4) pvhEntry = dv.getUint32(desc, true);
      p = next;
    }
  }
  if (loadSegments === 0) bad('no loadable segments');
  return { entry, pvhEntry, loadSegments };
}
