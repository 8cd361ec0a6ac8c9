import type { Disposable } from '../bus/bus.js';
import type { DeviceRegistry } from '../device/device.js';
import { StateError } from './errors.js';
import { isSnapshottable, type Snapshottable } from './snapshottable.js';

/**
 * When an object's state is restored relative to the others (Firecracker's restore order): the VM's
 * own state (irqchip, PIT, clock) first, then vCPUs (their LAPICs need the irqchip), then devices
 * (which re-drive their interrupt lines), then the machine.
 */
export type StatePhase = 'vm' | 'vcpu' | 'device' | 'machine';

/** The phases in restore (and save) order. */
export const STATE_PHASES: readonly StatePhase[] = ['vm', 'vcpu', 'device', 'machine'];

/**
 * Every Snapshottable of one VM, walked in a deterministic order: by phase, and within a phase in the
 * order of registration (assembly registers plugins in a fixed order, so two processes assembled from
 * the same config walk the same list). Devices in the DeviceRegistry that implement Snapshottable are
 * walked in the 'device' phase without being added here.
 */
export interface StateRegistry {
  /** Adds an object (default phase 'device'); disposing the result removes it (hot-unplug). */
  add(item: Snapshottable, phase?: StatePhase): Disposable;
  /** Every snapshottable in walk order; throws StateError 'Mismatch' when two share an id. */
  all(): readonly Snapshottable[];
}

/** The StateRegistry of a VM: its own entries plus the snapshottable devices of a DeviceRegistry. */
export class OrderedStateRegistry implements StateRegistry {
  private readonly entries: { item: Snapshottable; phase: StatePhase }[] = [];

  /** `devices`: walked in the 'device' phase, after the devices added here. */
  constructor(private readonly devices?: DeviceRegistry) {}

  add(item: Snapshottable, phase: StatePhase = 'device'): Disposable {
    if (!STATE_PHASES.includes(phase)) throw new RangeError(`unknown state phase '${String(phase)}'`);
    const entry = { item, phase };
    this.entries.push(entry);
    return {
      dispose: () => {
        const i = this.entries.indexOf(entry);
        if (i >= 0) this.entries.splice(i, 1);
      },
    };
  }

  all(): readonly Snapshottable[] {
    const out: Snapshottable[] = [];
    for (const phase of STATE_PHASES) {
      for (const e of this.entries) if (e.phase === phase) out.push(e.item);
      if (phase === 'device') for (const d of this.devices?.all() ?? []) if (isSnapshottable(d)) out.push(d);
    }
    const seen = new Set<string>();
    for (const s of out) {
      if (seen.has(s.id))
        throw new StateError('Mismatch', `two snapshottable objects share the id '${s.id}'`, { id: s.id });
      seen.add(s.id);
    }
    return out;
  }
}
