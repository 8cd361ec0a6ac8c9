import type { GuestMemory } from '../memory/guest-memory.js';
import { createHeapMemory } from '../memory/backends/heap.js';

/** Heap-backed guest memory for unit tests: `testGuestMemory(64 * 1024)` or explicit regions. */
export function testGuestMemory(
  sizeOrRegions: number | bigint | { start: bigint | number; size: bigint | number }[] = 1 << 20,
): GuestMemory {
  const regions =
    typeof sizeOrRegions === 'object'
      ? sizeOrRegions.map((r) => ({ start: BigInt(r.start), size: BigInt(r.size) }))
      : [{ start: 0n, size: BigInt(sizeOrRegions) }];
  return createHeapMemory({ backend: 'heap', regions });
}
