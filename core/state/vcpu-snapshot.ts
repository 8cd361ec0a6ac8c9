import { z } from 'zod';
import type { Vcpu } from '../hypervisor/hypervisor.js';
import type { VcpuState } from '../hypervisor/vcpu-state.js';
import { defineState, type Snapshottable } from './snapshottable.js';
import { taggedJson } from './tagged-json.js';

/**
 * A vCPU's saved form: the hypervisor's arch-neutral container (`arch`, payload `version`, `payload`) with
 * the payload's bigint and bytes tagged for JSON (tagged-json.ts). The arch's payload schema validates
 * the decoded payload (in checkState, through the check the arch plugin passes, and again in restore).
 */
export const VcpuStateSpec = defineState({
  name: 'vCPU',
  version: 1,
  schema: z.strictObject({
    arch: z.string().regex(/^[a-z0-9_]{1,32}$/),
    version: z.number().int().min(1).max(0xffff),
    payload: taggedJson({ maxDepth: 8, maxNodes: 4096, maxBytes: 1 << 20 }),
  }),
});

/**
 * One vCPU as a Snapshottable (id `vcpu<index>`, walked in the 'vcpu' phase, after the irqchip). Save and
 * load go through `Vcpu.saveState` / `Vcpu.restoreState`; `check` is the arch's validation of a whole
 * state without setting anything (e.g. the payload schema and the backend's blob checks), so a VM-wide
 * restore refuses a hostile vCPU state before it changes any part. Call it with the vCPU not running
 * (the runner paused): its state is read and written through the vCPU's fd.
 */
export class VcpuSnapshot implements Snapshottable<VcpuState> {
  readonly stateSpec = VcpuStateSpec;
  readonly id: string;

  constructor(
    private readonly vcpu: Pick<Vcpu, 'index' | 'saveState' | 'restoreState'>,
    private readonly check?: (state: VcpuState) => void,
  ) {
    this.id = `vcpu${vcpu.index}`;
  }

  saveState(): VcpuState {
    return this.vcpu.saveState();
  }

  checkState(state: VcpuState): void {
    this.check?.(state);
  }

  loadState(state: VcpuState): void {
    this.vcpu.restoreState(state);
  }
}
