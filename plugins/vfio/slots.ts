import type { Disposable } from '../../core/bus/bus.js';
import type { Vm } from '../../core/hypervisor/hypervisor.js';

/** Puts host memory (an mmapped device BAR) into the guest's address space; dispose() takes it out. */
export interface DeviceMemorySlots {
  map(guestAddress: bigint, size: bigint, hostAddress: bigint): Disposable;
}

const taken = new WeakMap<Vm, Set<number>>();

/**
 * Device memory as KVM memory slots. Guest RAM takes slots from 0 up (one per region); device slots are
 * numbered from the top of the VM's slot range down, shared by every vfio device of the VM.
 */
export class VmDeviceMemorySlots implements DeviceMemorySlots {
  constructor(private readonly vm: Vm) {}

  map(guestAddress: bigint, size: bigint, hostAddress: bigint): Disposable {
    const used = taken.get(this.vm) ?? new Set<number>();
    taken.set(this.vm, used);
    let slot = Math.min(this.vm.capabilities.maxMemorySlots || 32, 32_768) - 1;
    while (used.has(slot)) slot--;
    used.add(slot);
    try {
      this.vm.setMemorySlot({ slot, guestAddress, size, hostAddress });
    } catch (err) {
      used.delete(slot);
      throw err;
    }
    let live = true;
    return {
      dispose: () => {
        if (!live) return;
        live = false;
        used.delete(slot);
        this.vm.removeMemorySlot(slot);
      },
    };
  }
}
