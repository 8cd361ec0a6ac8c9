import { gzipSync } from 'node:zlib';

/**
 * Test doubles: tiny hand-made kernel images for extractor tests (no Debian package needed).
 */

/** An ELF64 x86-64 header + one PT_LOAD + one PT_NOTE (a Xen PHYS32_ENTRY note when `pvhEntry` is given). */
export function fakeElf(pvhEntry?: number): Uint8Array {
  const note =
    pvhEntry === undefined
      ? Buffer.alloc(0)
      : (() => {
          const n = Buffer.alloc(12 + 4 + 4);
          n.writeUInt32LE(4, 0); // namesz "Xen\0"
          n.writeUInt32LE(4, 4); // descsz
          n.writeUInt32LE(18, 8); // XEN_ELFNOTE_PHYS32_ENTRY
          n.write('Xen\0', 12, 'latin1');
          n.writeUInt32LE(pvhEntry, 16);
          return n;
        })();
  const phoff = 64,
    phnum = 2,
    phentsize = 56;
  const noteOff = phoff + phnum * phentsize;
  const img = Buffer.alloc(noteOff + note.length + 64);
  img.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1], 0);
  img.writeUInt16LE(2, 16); // ET_EXEC
  img.writeUInt16LE(62, 18); // EM_X86_64
  img.writeUInt32LE(1, 20);
  img.writeBigUInt64LE(0x1000000n, 24); // e_entry
  img.writeBigUInt64LE(BigInt(phoff), 32);
  img.writeUInt16LE(64, 52);
  img.writeUInt16LE(phentsize, 54);
  img.writeUInt16LE(phnum, 56);
  // PT_LOAD covering the whole file
  img.writeUInt32LE(1, phoff);
  img.writeBigUInt64LE(0n, phoff + 8);
  img.writeBigUInt64LE(BigInt(img.length), phoff + 32);
  // PT_NOTE
  img.writeUInt32LE(4, phoff + phentsize);
  img.writeBigUInt64LE(BigInt(noteOff), phoff + phentsize + 8);
  img.writeBigUInt64LE(BigInt(note.length), phoff + phentsize + 32);
  img.set(note, noteOff);
  return img;
}

/** A bzImage-shaped file: setup header (protocol 2.15) and a payload compressed as given, with the size trailer. */
export function fakeBzImage(
  inner: Uint8Array,
  compressed: Uint8Array = gzipSync(inner),
  opts: { version?: string } = {},
): Buffer {
  const setupSects = 3;
  const pm = (setupSects + 1) * 512;
  const payloadOffset = 0x40;
  const trailer = Buffer.alloc(4);
  trailer.writeUInt32LE(inner.length);
  const payload = Buffer.concat([compressed, trailer]);
  const pmSize = Math.ceil((payloadOffset + payload.length + 64) / 16) * 16;
  const img = Buffer.alloc(pm + pmSize);
  img[0x1f1] = setupSects;
  img.writeUInt32LE(pmSize / 16, 0x1f4);
  img.writeUInt16LE(0xaa55, 0x1fe);
  img.writeUInt32LE(0x53726448, 0x202);
  img.writeUInt16LE(0x020f, 0x206);
  const version = opts.version ?? '6.1.0-test (fake)';
  img.writeUInt16LE(0x300, 0x20e); // kernel_version pointer - 0x200
  img.write(version + '\0', 0x500, 'latin1');
  img.writeUInt32LE(payloadOffset, 0x248);
  img.writeUInt32LE(payload.length, 0x24c);
  img.set(payload, pm + payloadOffset);
  return img;
}
