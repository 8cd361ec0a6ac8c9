import type { GuestMemory } from '../../core/memory/guest-memory.js';
import { VhostUserError } from './errors.js';
import type { MemRegion } from './protocol.js';

/** Most regions one SET_MEM_TABLE carries (the protocol's baseline without CONFIGURE_MEM_SLOTS). */
export const MAX_MEM_REGIONS = 8;

/**
 * Guest RAM as the back end maps it (contract C6): every region must live in an fd another process can
 * map shared — the memfd backend (`machine.memoryBackend: memfd`) or a shared file (`file`). The front
 * end's address of a region is its host address in this process. Throws VhostUserError('Memory') naming
 * the fix when a region is anonymous or heap memory, or when there are more than 8 regions.
 */
export function sharedRegions(memory: GuestMemory): MemRegion[] {
  const out: MemRegion[] = [];
  for (const r of memory.regions) {
    if (r.readOnly) continue; // ROM: no device DMA into it
    const b = r.backing;
    if (b.kind !== 'memfd' && b.kind !== 'file')
      throw new VhostUserError(
        'Memory',
        `vhost-user needs guest RAM the back end can map, but the region at 0x${r.range.start.value.toString(16)} ` +
          `is '${b.kind}' memory: set machine.memoryBackend: memfd`,
        { backing: b.kind },
      );
    out.push({
      guestPhysAddr: r.range.start.value,
      size: r.range.length,
      userAddr: r.hostAddress,
      mmapOffset: b.offset,
      fd: b.fd,
    });
  }
  if (out.length > MAX_MEM_REGIONS)
    throw new VhostUserError('Memory', `guest RAM has ${out.length} regions; vhost-user takes at most 8`, {
      regions: out.length,
    });
  return out;
}
