import { RangeBus } from '../../../core/bus/range-bus.js';
import { UvEventLoop } from '../../../core/events/uv-event-loop.js';
import { createAnonymousMmapMemory } from '../../../core/memory/backends/anonymous-mmap.js';
import type { GuestMemory } from '../../../core/memory/guest-memory.js';
import { KvmHypervisor } from '../hypervisor.js';
import { mapGuestMemory } from '../memory.js';
import { writeLongModeTables } from '../testing.js';
import type { KvmVm } from '../vm.js';

/** What a kvm-tier runner test needs: a VM with 4 MiB of mapped memory holding long-mode tables, a loop and a bus. */
export interface LongModeTestVm {
  hv: KvmHypervisor;
  vm: KvmVm;
  mem: GuestMemory;
  loop: UvEventLoop;
  bus: RangeBus;
  /** Releases everything in reverse order (stop the runner first). */
  close(): void;
}

/**
 * Opens a KVM VM with 4 MiB of guest memory (identity-mapped with 2 MiB pages, long-mode tables written) and a loop and
 * bus for it; the caller closes it.
 */
export function openLongModeTestVm(): LongModeTestVm {
  const hv = new KvmHypervisor();
  const vm = hv.createKvmVm();
  const mem = createAnonymousMmapMemory({ regions: [{ start: 0n, size: 4n << 20n }], backend: 'anonymous' });
  mapGuestMemory(vm, mem);
  writeLongModeTables(mem);
  const loop = new UvEventLoop();
  const bus = new RangeBus();
  return {
    hv,
    vm,
    mem,
    loop,
    bus,
    close: () => {
      loop.dispose();
      vm.close();
      mem.close();
      hv.close();
    },
  };
}
