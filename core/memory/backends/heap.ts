import type { GuestMemory, GuestMemoryLayout, GuestMemoryRegion } from '../guest-memory.js';
import { GuestMemoryError } from '../errors.js';
import { makeRegion, RegionGuestMemory } from '../region-guest-memory.js';
import { chunks, validateLayout } from './layout.js';

/** Refuses heap guest memory beyond this (it is for tests, and is committed eagerly). */
export const HEAP_MEMORY_LIMIT = 1n << 32n;

/**
 * Guest memory on the JS heap, for tests: no host address (hostAddress 0n), so it cannot
 * be given to a hypervisor. Regions need not be page-aligned.
 */
export function createHeapMemory(layout: GuestMemoryLayout): GuestMemory {
  const regions = validateLayout(layout, false);
  const total = regions.reduce((s, r) => s + r.size, 0n);
  if (total > HEAP_MEMORY_LIMIT)
    throw new GuestMemoryError(
      'Backend',
      `heap guest memory of ${total} bytes is over the ${HEAP_MEMORY_LIMIT} byte limit`,
      { size: total },
    );
  const out: GuestMemoryRegion[] = [];
  for (const r of regions) {
    for (const ch of chunks(r.start, r.size))
      out.push(makeRegion(ch.start, new Uint8Array(ch.length), 0n, { kind: 'heap' }));
  }
  return new RegionGuestMemory(out);
}
