import { readSync } from 'node:fs';
import type { GuestAddress } from '../../../core/address.js';
import type { GuestMemory } from '../../../core/memory/guest-memory.js';
import { X86BootError } from '../errors.js';

/**
 * A boot file (kernel or initramfs) as the loaders use it: its length, small reads for headers and notes, and
 * copies of its bulk straight into guest memory. A file is never read whole into the VMM: its loadable bytes go from
 * the page cache into guest RAM with pread (one copy, as Firecracker's loader does), and the headers are read in
 * small pieces. Tests and fuzz targets pass the bytes themselves (`asBootImage(uint8array)`).
 */
export interface BootImage {
  /** The file's size in bytes. */
  readonly length: number;
  /** A copy of bytes [start, end) of the image; `start <= end <= length` (the caller checks). */
  bytes(start: number, end: number): Uint8Array;
  /** Copies bytes [offset, offset + length) of the image to guest memory at `at` (the caller range-checks `at`). */
  copyTo(mem: GuestMemory, at: GuestAddress, offset: number, length: number): void;
}

/** The image of bytes already in memory. */
export function asBootImage(image: Uint8Array | BootImage): BootImage {
  if (!(image instanceof Uint8Array)) return image;
  return {
    length: image.length,
    bytes: (start, end) => image.slice(start, end),
    copyTo: (mem, at, offset, length) => mem.write(at, image.subarray(offset, offset + length)),
  };
}

/**
 * The image of an open file of `size` bytes (fstat's). `fd` stays the caller's: it must stay open while the image
 * is used. A file that shrinks while it is loaded gives an X86BootError naming it, never a short kernel.
 */
export function fileBootImage(fd: number, size: number, what: string, path: string): BootImage {
  const shrank = (at: number) =>
    new X86BootError('Io', `the ${what} ${path} shrank while it was loaded (no bytes at offset ${at})`, { path });
  return {
    length: size,
    bytes(start, end) {
      const out = new Uint8Array(end - start);
      let done = 0;
      while (done < out.length) {
        const n = readSync(fd, out, done, out.length - done, start + done);
        if (n === 0) throw shrank(start + done);
        done += n;
      }
      return out;
    },
    copyTo(mem, at, offset, length) {
      let done = 0;
      while (done < length) {
        const n = mem.readFromFile(fd, at.add(BigInt(done)), length - done, offset + done);
        if (n === 0) throw shrank(offset + done);
        done += n;
      }
    },
  };
}
