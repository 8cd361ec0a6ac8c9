/**
 * Synthetic kernels for tests (a minimal but valid bzImage setup header and a minimal
 * ELF64 vmlinux with a PVH note) and the x86 mock hypervisor. Others may import these to exercise the machine
 * without a real kernel.
 */

/** Setup header fields of a fake bzImage (defaults give a valid, relocatable 64-bit kernel). */
export interface FakeBzImageOptions {
  /** Bytes of protected-mode kernel after the setup sectors (default 64 KiB). */
  kernelSize?: number;
  setupSects?: number;
  version?: number;
  loadflags?: number;
  xloadflags?: number;
  cmdlineSize?: number;
  initrdAddrMax?: number;
  initSize?: number;
  prefAddress?: bigint;
  kernelAlignment?: number;
  relocatable?: boolean;
  /** Overrides syssize (16-byte units) to fake an inconsistent header. */
  syssize?: number;
}

/** A minimal bzImage with a valid setup header and a zero-filled protected-mode kernel, shaped by `o`. */
export function fakeBzImage(o: FakeBzImageOptions = {}): Uint8Array {
  const setupSects = o.setupSects ?? 4;
  const kernelSize = o.kernelSize ?? 64 * 1024;
  const setupSize = ((setupSects === 0 ? 4 : setupSects) + 1) * 512;
  const img = new Uint8Array(setupSize + kernelSize);
  const dv = new DataView(img.buffer);
  img[0x1f1] = setupSects;
  dv.setUint32(0x1f4, o.syssize ?? Math.ceil(kernelSize / 16), true);
  dv.setUint16(0x1fe, 0xaa55, true);
  img[0x200] = 0xeb; // jmp short over the header
  img[0x201] = 0x26c - 0x202;
  dv.setUint32(0x202, 0x5372_6448, true); // HdrS
  dv.setUint16(0x206, o.version ?? 0x020f, true);
  dv.setUint16(0x20e, 0, true);
  img[0x211] = o.loadflags ?? 0x01;
  dv.setUint32(0x214, 0x10_0000, true);
  dv.setUint32(0x22c, o.initrdAddrMax ?? 0x7fff_ffff, true);
  dv.setUint32(0x230, o.kernelAlignment ?? 0x20_0000, true);
  img[0x234] = (o.relocatable ?? true) ? 1 : 0;
  dv.setUint16(0x236, o.xloadflags ?? 0x3, true);
  dv.setUint32(0x238, o.cmdlineSize ?? 2047, true);
  dv.setBigUint64(0x258, o.prefAddress ?? 0x100_0000n, true);
  dv.setUint32(0x260, o.initSize ?? 0x40_0000, true);
  // Recognisable kernel bytes: byte i of the protected-mode kernel = i & 0xff ^ 0x5a.
  for (let i = 0; i < kernelSize; i++) img[setupSize + i] = (i & 0xff) ^ 0x5a;
  return img;
}

/** One PT_LOAD segment of a fake ELF: load address, file bytes and memory size (default: the bytes' length). */
export interface FakeElfSegment {
  paddr: bigint;
  data: Uint8Array;
  memsz?: bigint;
}

/** What a fake ELF vmlinux holds: segments, the PVH note and the ELF machine (default x86-64). */
export interface FakeElfOptions {
  segments?: FakeElfSegment[];
  /** PVH entry to put in a Xen note; null for none. */
  pvhEntry?: bigint | null;
  /** Size of the note's value: 4 or 8 bytes (Linux uses 8 on x86_64). */
  pvhEntrySize?: 4 | 8;
  machine?: number;
}

/** An ELF64 x86_64 executable: program headers, then a note segment, then the loadable data. */
export function fakeElfKernel(o: FakeElfOptions = {}): Uint8Array {
  const segs = o.segments ?? [
    { paddr: 0x100_0000n, data: new Uint8Array(4096).map((_, i) => i & 0xff), memsz: 0x3000n },
  ];
  const withNote = o.pvhEntry !== null;
  const entrySize = o.pvhEntrySize ?? 8;
  const phnum = segs.length + (withNote ? 1 : 0);
  const phoff = 64;
  let off = phoff + phnum * 56;
  const noteOff = off;
  const note = new Uint8Array(12 + 4 + entrySize);
  if (withNote) {
    const ndv = new DataView(note.buffer);
    ndv.setUint32(0, 4, true);
    ndv.setUint32(4, entrySize, true);
    ndv.setUint32(8, 18, true);
    note.set([0x58, 0x65, 0x6e, 0], 12); // "Xen\0"
    const entry = o.pvhEntry ?? 0x100_0100n;
    if (entrySize === 8) ndv.setBigUint64(16, entry, true);
    else ndv.setUint32(16, Number(entry), true);
    off += note.length;
  }
  const dataOffs: number[] = [];
  for (const s of segs) {
    dataOffs.push(off);
    off += s.data.length;
  }
  const img = new Uint8Array(off);
  const dv = new DataView(img.buffer);
  img.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1], 0);
  dv.setUint16(16, 2, true); // ET_EXEC
  dv.setUint16(18, o.machine ?? 62, true);
  dv.setUint32(20, 1, true);
  dv.setBigUint64(24, 0xffff_ffff_8100_0000n, true);
  dv.setBigUint64(32, BigInt(phoff), true);
  dv.setUint16(52, 64, true);
  dv.setUint16(54, 56, true);
  dv.setUint16(56, phnum, true);
  let ph = phoff;
  segs.forEach((s, i) => {
    dv.setUint32(ph, 1, true); // PT_LOAD
    dv.setUint32(ph + 4, 5, true);
    dv.setBigUint64(ph + 8, BigInt(dataOffs[i]), true);
    dv.setBigUint64(ph + 16, s.paddr + 0xffff_ffff_8000_0000n, true);
    dv.setBigUint64(ph + 24, s.paddr, true);
    dv.setBigUint64(ph + 32, BigInt(s.data.length), true);
    dv.setBigUint64(ph + 40, s.memsz ?? BigInt(s.data.length), true);
    dv.setBigUint64(ph + 48, 0x20_0000n, true);
    img.set(s.data, dataOffs[i]);
    ph += 56;
  });
  if (withNote) {
    dv.setUint32(ph, 4, true); // PT_NOTE
    dv.setBigUint64(ph + 8, BigInt(noteOff), true);
    dv.setBigUint64(ph + 32, BigInt(note.length), true);
    dv.setBigUint64(ph + 40, BigInt(note.length), true);
    dv.setBigUint64(ph + 48, 4n, true);
    img.set(note, noteOff);
  }
  return img;
}
export * from './hypervisor/mock.js';
