import { z } from 'zod';
import type { Vm } from '../hypervisor/hypervisor.js';
import { bytes } from './codecs.js';
import { defineState, type Snapshottable } from './snapshottable.js';

/** Upper bound on one opaque blob of a hypervisor's per-VM state (KVM's largest, the PIT, is well below). */
export const MAX_VM_BLOB_BYTES = 64 * 1024;

/** The hypervisor's per-VM state: named opaque blobs (clock, irqchip, PIT), as Vm.saveState returns them. */
export const HypervisorVmStateSpec = defineState({
  name: 'hypervisor VM (irqchip, clock)',
  version: 1,
  schema: z.strictObject({
    blobs: z
      .record(z.string().regex(/^[A-Za-z0-9._-]{1,64}$/), bytes(MAX_VM_BLOB_BYTES))
      .refine((r) => Object.keys(r).length <= 32, 'at most 32 blobs'),
  }),
});

/** The in-memory form of HypervisorVmStateSpec. */
export type HypervisorVmState = z.output<typeof HypervisorVmStateSpec.schema>;

/**
 * The opaque per-VM state of the hypervisor (KVM: irqchip PIC/IOAPIC, PIT, kvmclock) as a
 * Snapshottable, walked in the 'vm' phase. checkState compares with what this VM saves itself:
 * the same blob names and sizes, so a snapshot from a VM built otherwise (no PIT, say) is refused
 * before anything is set.
 */
export class HypervisorVmSnapshot implements Snapshottable<HypervisorVmState> {
  readonly stateSpec = HypervisorVmStateSpec;

  /** `id`: stable across processes; 'vm' unless a VM has several hypervisor parts. */
  constructor(
    private readonly vm: Pick<Vm, 'saveState' | 'restoreState'>,
    readonly id = 'vm',
  ) {}

  saveState(): HypervisorVmState {
    return { blobs: this.vm.saveState() };
  }

  checkState(state: HypervisorVmState): void {
    const own = this.vm.saveState();
    const want = Object.keys(own).sort();
    const got = Object.keys(state.blobs).sort();
    if (want.join() !== got.join())
      throw new Error(`it has blobs [${got.join(', ')}], this VM saves [${want.join(', ')}]`);
    for (const k of want)
      if (own[k]!.length !== state.blobs[k]!.length)
        throw new Error(`blob '${k}' has ${state.blobs[k]!.length} bytes, this VM's has ${own[k]!.length}`);
  }

  loadState(state: HypervisorVmState): void {
    this.vm.restoreState(state.blobs);
  }
}
