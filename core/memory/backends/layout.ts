import { U64_MAX } from '../../address.js';
import type { GuestMemoryLayout } from '../guest-memory.js';
import { GuestMemoryError } from '../errors.js';

/** The host page size the mmap backends align regions to (bytes; 4 KiB: Linux's base page on x64 and arm64). */
export const PAGE_SIZE = 4096n;
/**
 * Largest single view a region gets. Node 20 caps an ArrayBuffer at 4 GiB, so
 * backends split bigger mappings into adjacent regions of at most this size
 * (each becomes its own memory slot; accesses may span them).
 */
export const MAX_REGION_VIEW = 1n << 30n;

/** Checks a requested layout: positive sizes, no overlap, inside 2^64, page-aligned when `pageAligned`. */
export function validateLayout(layout: GuestMemoryLayout, pageAligned: boolean): { start: bigint; size: bigint }[] {
  if (layout.regions.length === 0) throw new GuestMemoryError('InvalidRange', 'guest memory needs at least one region');
  const regions = [...layout.regions].sort((a, b) => (a.start < b.start ? -1 : 1));
  let prevEnd = -1n;
  for (const r of regions) {
    if (r.size <= 0n)
      throw new GuestMemoryError('InvalidRange', `region at 0x${r.start.toString(16)} has size ${r.size}`, {
        start: r.start,
        size: r.size,
      });
    if (r.start < 0n || r.start + r.size - 1n > U64_MAX) {
      throw new GuestMemoryError(
        'InvalidRange',
        `region 0x${r.start.toString(16)} + ${r.size} leaves the 64-bit address space`,
        { start: r.start, size: r.size },
      );
    }
    if (pageAligned && (r.start % PAGE_SIZE !== 0n || r.size % PAGE_SIZE !== 0n)) {
      throw new GuestMemoryError(
        'InvalidRange',
        `region 0x${r.start.toString(16)} + 0x${r.size.toString(16)} is not 4 KiB aligned`,
        { start: r.start, size: r.size },
      );
    }
    if (r.start < prevEnd)
      throw new GuestMemoryError('InvalidRange', `region at 0x${r.start.toString(16)} overlaps the previous one`, {
        start: r.start,
      });
    prevEnd = r.start + r.size;
  }
  return regions;
}

/** Splits [start, start+size) into chunks of at most MAX_REGION_VIEW bytes: [chunkStart, offsetInRegion, length]. */
export function chunks(start: bigint, size: bigint): { start: bigint; offset: bigint; length: number }[] {
  const out: { start: bigint; offset: bigint; length: number }[] = [];
  for (let off = 0n; off < size; off += MAX_REGION_VIEW) {
    const len = size - off < MAX_REGION_VIEW ? size - off : MAX_REGION_VIEW;
    out.push({ start: start + off, offset: off, length: Number(len) });
  }
  return out;
}
