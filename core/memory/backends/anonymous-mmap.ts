import type { GuestMemory, GuestMemoryLayout } from '../guest-memory.js';
import { mmapGuestMemory } from './mmap.js';

/** Private anonymous memory (MAP_NORESERVE: pages are only committed when touched). */
export function createAnonymousMmapMemory(layout: GuestMemoryLayout): GuestMemory {
  return mmapGuestMemory(
    layout,
    () => ({ kind: 'anonymous' }),
    -1,
    () => {},
  );
}
