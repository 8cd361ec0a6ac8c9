import * as fs from 'node:fs';
import { createAnonymousMmapMemory } from '../../core/memory/backends/anonymous-mmap.js';
import type { GuestMemory, GuestMemoryLayout } from '../../core/memory/guest-memory.js';
import { c } from '../../core/native/libc.js';
import { MigrationError } from './errors.js';

const MADV_HUGEPAGE = 14;

/** A guest RAM region as a migration's Hello lists it (memory-file order). */
interface MemoryRegion {
  start: number;
  size: number;
  fileOffset: number;
}

/**
 * Where a migration's destination puts the pages it receives: either a file (written with pwrite, mapped shared
 * once the VM is built: any config, vhost-user back ends included) or, for a VM built while the pages come,
 * anonymous memory that becomes the VM's RAM, written in place and advised for transparent huge pages as QEMU's
 * RAM is. The latter spares the restarted guest a second-level page fault per 4 KiB page it touches (nested, a
 * fault is an exit of the L1 kernel; a shmem file gets no huge pages by default).
 */
export interface IncomingMemory {
  /** Writes `data` at memory-file offset `at` (range-checked by the caller). */
  write(at: number, data: Uint8Array): void;
  /** Zeroes `len` bytes at `at`. */
  zero(at: number, len: number): void;
  /** The stream ended: no more writes. */
  finish(): void;
  /** Maps it as the VM's memory (restoreHooks' `map`), once. */
  map(layout: GuestMemoryLayout): GuestMemory;
  /** Frees what was not handed to a VM (the file, the memory). */
  discard(): void;
}

/** Writes all of `data` at `pos`. */
function writeAll(fd: number, data: Uint8Array, pos: number): void {
  for (let done = 0; done < data.length;) done += fs.writeSync(fd, data, done, data.length - done, pos + done);
}

/** Incoming pages in a new file `name` of `total` bytes, mapped shared by `mapFile` (which removes the name). */
export function incomingFile(
  name: string,
  total: number,
  mapFile: (layout: GuestMemoryLayout) => GuestMemory,
): IncomingMemory {
  let fd: number | undefined = fs.openSync(name, 'wx+', 0o600);
  try {
    fs.ftruncateSync(fd, total);
  } catch (err) {
    fs.closeSync(fd);
    fs.rmSync(name, { force: true });
    throw err;
  }
  const zero = Buffer.alloc(1 << 20);
  return {
    write: (at, data) => writeAll(fd!, data, at),
    zero: (at, len) => {
      for (let o = 0; o < len; o += zero.length)
        writeAll(fd!, zero.subarray(0, Math.min(zero.length, len - o)), at + o);
    },
    finish: () => {
      if (fd !== undefined) fs.closeSync(fd);
      fd = undefined;
    },
    map: mapFile,
    discard: () => {
      if (fd !== undefined) fs.closeSync(fd);
      fd = undefined;
      fs.rmSync(name, { force: true });
    },
  };
}

/** Incoming pages in anonymous memory laid out as `regions` (memory-file order), handed to the VM as its RAM. */
export function incomingAnonymous(regions: readonly MemoryRegion[]): IncomingMemory {
  const memory = createAnonymousMmapMemory({
    regions: regions.map((r) => ({ start: BigInt(r.start), size: BigInt(r.size) })),
    backend: 'anonymous',
  });
  // best effort, as the kvm plugin's transparentHugePages: a host without THP says no and gets small pages
  // SAFETY: advice on mappings this memory owns; nothing is unmapped or moved.
  for (const r of memory.regions) c.madvise(r.hostAddress, r.range.length, MADV_HUGEPAGE);
  /** Memory-file offset -> [region bytes, offset in them], in order. */
  const spans = memory.regions.map((r) => {
    const from = regions.find((x) => BigInt(x.start) === r.range.start.value)!;
    return { at: from.fileOffset, bytes: r.bytes };
  });
  const each = (at: number, len: number, fn: (bytes: Uint8Array, off: number, from: number, n: number) => void) => {
    for (const s of spans) {
      const lo = Math.max(at, s.at);
      const hi = Math.min(at + len, s.at + s.bytes.length);
      if (lo < hi) fn(s.bytes, lo - s.at, lo - at, hi - lo);
    }
  };
  let handed = false;
  let closed = false;
  return {
    write: (at, data) => each(at, data.length, (b, off, from, n) => b.set(data.subarray(from, from + n), off)),
    zero: (at, len) => each(at, len, (b, off, _from, n) => b.fill(0, off, off + n)),
    finish: () => {},
    map: () => {
      if (handed || closed) throw new MigrationError('State', 'the received memory was mapped already');
      handed = true;
      return memory;
    },
    discard: () => {
      if (handed || closed) return;
      closed = true;
      memory.close();
    },
  };
}
