import type { GuestMemory, GuestMemoryFactory, GuestMemoryLayout } from './guest-memory.js';
import { createAnonymousMmapMemory } from './backends/anonymous-mmap.js';
import { createSharedFileMemory } from './backends/shared-file-mmap.js';
import { createMemfdMemory } from './backends/memfd.js';
import { createHeapMemory } from './backends/heap.js';

const backends: Record<GuestMemoryLayout['backend'], (l: GuestMemoryLayout) => GuestMemory> = {
  anonymous: createAnonymousMmapMemory,
  file: createSharedFileMemory,
  memfd: createMemfdMemory,
  heap: createHeapMemory,
};

/** Picks the backend named by `layout.backend`; the one place that choice is made. */
export class BackendGuestMemoryFactory implements GuestMemoryFactory {
  create(layout: GuestMemoryLayout): GuestMemory {
    return backends[layout.backend](layout);
  }
}
