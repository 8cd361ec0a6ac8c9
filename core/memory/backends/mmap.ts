import {
  c,
  check,
  MAP_ANONYMOUS,
  MAP_HUGETLB,
  MAP_NORESERVE,
  MAP_PRIVATE,
  MAP_SHARED,
  PROT_READ,
  PROT_WRITE,
  viewOf,
} from '../../native/libc.js';
import type { GuestMemoryLayout, GuestMemoryRegion } from '../guest-memory.js';
import { GuestMemoryError } from '../errors.js';
import { makeRegion, RegionGuestMemory } from '../region-guest-memory.js';
import { chunks, validateLayout } from './layout.js';

/** One host mapping and how to undo it. */
export interface Mapping {
  addr: bigint;
  length: bigint;
}

/**
 * Maps each region of `layout` with mmap and wraps them in a RegionGuestMemory.
 * `fd` is the file mapped (regions one after another from offset 0), or -1 for anonymous memory; `share` says
 * whether a file is mapped shared (writes reach it) or private (copy-on-write: writes stay in this process).
 * On any failure everything mapped so far is unmapped and `onFail` runs (closing fds).
 */
export function mmapGuestMemory(
  layout: GuestMemoryLayout,
  backing: (fileOffset: bigint) => GuestMemoryRegion['backing'],
  fd: number,
  onRelease: () => void,
  share: 'shared' | 'private' = 'shared',
): RegionGuestMemory {
  const regions = validateLayout(layout, true);
  const mappings: Mapping[] = [];
  const out: GuestMemoryRegion[] = [];
  const unmapAll = (): void => {
    for (const m of mappings) c.munmap(m.addr, m.length);
  };
  try {
    let fileOffset = 0n;
    for (const r of regions) {
      const flags =
        fd < 0
          ? MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | (layout.hugePages ? MAP_HUGETLB : 0)
          : (share === 'shared' ? MAP_SHARED : MAP_PRIVATE | MAP_NORESERVE) | (layout.hugePages ? MAP_HUGETLB : 0);
      // SAFETY: a fresh mapping owned by this guest memory; unmapped by close() (or below on failure).
      // Views from viewOf() over it are valid only until then.
      const addr = BigInt(
        check(
          'mmap',
          c.mmap(0n, r.size, PROT_READ | PROT_WRITE, flags, fd, fd < 0 ? 0n : fileOffset),
          `guest RAM region of ${r.size} bytes`,
        ),
      );
      mappings.push({ addr, length: r.size });
      for (const ch of chunks(r.start, r.size)) {
        out.push(
          makeRegion(ch.start, viewOf(addr + ch.offset, ch.length), addr + ch.offset, backing(fileOffset + ch.offset)),
        );
      }
      fileOffset += r.size;
    }
  } catch (err) {
    unmapAll();
    onRelease();
    throw err instanceof GuestMemoryError
      ? err
      : new GuestMemoryError('Backend', `cannot map guest memory: ${(err as Error).message}`, {}, { cause: err });
  }
  return new RegionGuestMemory(out, () => {
    unmapAll();
    onRelease();
  });
}

/** The guest RAM a layout asks for: the sum of its region sizes, in bytes. */
export const totalSize = (layout: GuestMemoryLayout): bigint => layout.regions.reduce((s, r) => s + r.size, 0n);
