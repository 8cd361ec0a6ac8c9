import { GuestAddress } from '../../core/address.js';
import type { GuestMemory, GuestMemoryRegion } from '../../core/memory/guest-memory.js';
import { c, errno, errnoName } from '../../core/native/libc.js';

/** madvise advice: drop private anonymous pages (they read as zeros afterwards). */
export const MADV_DONTNEED = 4;
/** madvise advice: free the backing store of a shared mapping (punch a hole in memfd / file). */
export const MADV_REMOVE = 9;

/** A guest-physical byte range the guest gave up (page aligned by the caller). */
export interface GuestPages {
  readonly start: bigint;
  readonly length: bigint;
}

/** What one release did: bytes given back to the host, ranges refused (outside RAM, read-only, madvise failed). */
export interface ReleaseResult {
  released: bigint;
  refused: { start: bigint; length: bigint; why: string }[];
}

/** Gives host memory back: the madvise call, replaceable in tests. Returns 0 or an errno. */
export type Advise = (hostAddress: bigint, length: bigint, advice: number) => number;

/** The real madvise through koffi (core/native/libc.ts). */
export const nativeAdvise: Advise = (addr, len, advice) => {
  // SAFETY: [addr, addr + len) lies inside one guest RAM region's host mapping (checked by the
  // caller against the region's bounds); the mapping lives until the guest memory is closed, which
  // happens after devices are torn down. Only the page contents are affected, never the mapping.
  const r = Number(c.madvise(addr, len, advice));
  return r === 0 ? 0 : errno();
};

/** Sorts and merges adjacent or overlapping ranges (a guest sends PFNs in any order, repeats included). */
export function coalesce(ranges: readonly GuestPages[]): GuestPages[] {
  const sorted = [...ranges]
    .filter((r) => r.length > 0n)
    .sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  const out: { start: bigint; length: bigint }[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && r.start <= last.start + last.length) {
      const end = r.start + r.length;
      if (end > last.start + last.length) last.length = end - last.start;
    } else out.push({ start: r.start, length: r.length });
  }
  return out;
}

/** How a region gives pages back: private anonymous memory drops them, shared memory frees its backing store. */
function adviceFor(r: GuestMemoryRegion): number | 'zero' {
  switch (r.backing.kind) {
    case 'anonymous':
      return MADV_DONTNEED;
    case 'memfd':
    case 'file':
      return MADV_REMOVE;
    case 'heap':
      return 'zero'; // test memory: no host mapping to advise; zeroing shows the effect
  }
}

/**
 * Gives the host the memory behind guest pages the driver released (inflated balloon pages,
 * reported free pages). Every range is checked against guest RAM: a range outside it, or in a
 * read-only region (a ROM), is refused and reported, never advised; a range spanning two regions
 * is split. The guest reads zeros from a released page when it touches it again (anonymous and
 * memfd memory alike).
 */
export function releasePages(
  memory: GuestMemory,
  ranges: readonly GuestPages[],
  advise: Advise = nativeAdvise,
): ReleaseResult {
  const result: ReleaseResult = { released: 0n, refused: [] };
  for (const range of coalesce(ranges)) {
    let at = range.start;
    const end = range.start + range.length;
    while (at < end) {
      const region = memory.findRegion(GuestAddress.of(at));
      if (!region) {
        // skip to the next region (or the end): the hole is refused as one piece
        const next = memory.regions
          .map((r) => r.range.start.value)
          .filter((s) => s > at && s < end)
          .reduce((m, s) => (s < m ? s : m), end);
        result.refused.push({ start: at, length: next - at, why: 'not guest RAM' });
        at = next;
        continue;
      }
      const regionEnd = region.range.start.value + region.range.length;
      const pieceEnd = end < regionEnd ? end : regionEnd;
      const len = pieceEnd - at;
      const offset = at - region.range.start.value;
      const advice = adviceFor(region);
      if (region.readOnly) result.refused.push({ start: at, length: len, why: 'read-only memory' });
      else if (advice === 'zero') {
        region.bytes.fill(0, Number(offset), Number(offset + len));
        result.released += len;
      } else {
        const e = advise(region.hostAddress + offset, len, advice);
        if (e === 0) result.released += len;
        else result.refused.push({ start: at, length: len, why: `madvise: ${errnoName(e)}` });
      }
      at = pieceEnd;
    }
  }
  return result;
}
