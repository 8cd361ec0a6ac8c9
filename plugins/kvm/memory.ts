import type { MemorySlot, Vm } from '../../core/hypervisor/hypervisor.js';
import { c } from '../../core/native/libc.js';
import type { GuestMemory } from '../../core/memory/guest-memory.js';
import { KvmError } from './errors.js';
import { KvmVm } from './vm.js';

/** How mapGuestMemory numbers and flags the slots. */
export interface MapGuestMemoryOptions {
  /** First slot number to use (default 0); region i gets slot firstSlot + i. */
  firstSlot?: number;
  /** Turn on KVM dirty page logging for every slot (for snapshots / migration). */
  logDirtyPages?: boolean;
}

/**
 * Gives the VM one memory slot per GuestMemory region, in address order.
 * Idempotent: a region already mapped with the same slot, addresses and flags is
 * skipped, so the machine and the plugin may both call it. Regions without a host
 * mapping (the 'heap' test backend has hostAddress 0) cannot be given to KVM.
 * The memory must stay mapped until the VM is closed (or the slots removed).
 */
export function mapGuestMemory(vm: Vm, memory: GuestMemory, opts: MapGuestMemoryOptions = {}): MemorySlot[] {
  const first = opts.firstSlot ?? 0;
  const existing = vm instanceof KvmVm ? vm.memorySlots() : [];
  return memory.regions.map((r, i) => {
    if (r.hostAddress === 0n) {
      throw new KvmError(
        'InvalidArgument',
        `guest memory region ${r.range} has no host mapping (heap backend?); KVM needs mmap-backed memory`,
        { range: r.range.toString() },
      );
    }
    const slot: MemorySlot = {
      slot: first + i,
      guestAddress: r.range.start.value,
      size: r.range.length,
      hostAddress: r.hostAddress,
      readOnly: r.readOnly || undefined,
      logDirtyPages: opts.logDirtyPages || undefined,
    };
    const same = existing.find(
      (s) =>
        s.slot === slot.slot &&
        s.guestAddress === slot.guestAddress &&
        s.size === slot.size &&
        s.hostAddress === slot.hostAddress &&
        !!s.readOnly === !!slot.readOnly &&
        !!s.logDirtyPages === !!slot.logDirtyPages,
    );
    if (!same) vm.setMemorySlot(slot);
    return slot;
  });
}

const MADV_HUGEPAGE = 14;

/**
 * Asks the host kernel to back guest RAM with transparent huge pages (QEMU does the same), so
 * the hypervisor's second-level page tables fault in 2 MiB at a time. Best effort: returns the
 * regions the kernel refused (e.g. no THP, or a file mapping without huge page support).
 * SAFETY: only advice on mappings the GuestMemory owns and keeps; nothing is unmapped or moved.
 */
export function adviseHugePages(memory: GuestMemory): string[] {
  const refused: string[] = [];
  for (const r of memory.regions) {
    if (r.hostAddress === 0n || r.readOnly) continue;
    if (Number(c.madvise(r.hostAddress, r.range.length, MADV_HUGEPAGE)) !== 0) refused.push(r.range.toString());
  }
  return refused;
}
