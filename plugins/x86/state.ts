import { z } from 'zod';
import { u16, u64 } from '../../core/state/codecs.js';
import { defineState, type Snapshottable } from '../../core/state/snapshottable.js';
import { X86BootError } from './errors.js';
import { MPTABLE_MAX_VCPUS } from './platform/mptable.js';
import type { Vcpu } from '../../core/hypervisor/hypervisor.js';
import type { VcpuState } from '../../core/hypervisor/vcpu-state.js';
import { x86Vcpu } from './hypervisor/extension.js';
import { parseX86VcpuState } from './hypervisor/state.js';
import type { Pm1State } from './platform/pm.js';
import { cpuidDifference } from './cpu/cpuid.js';

/**
 * The x86 machine's own state (what is neither vCPU nor irqchip state): the shape it was built with
 * (vCPU count, RAM size, ACPI), checked against the restoring machine, and whether the guest was booted
 * (kernel loaded, vCPUs set up): a restored machine must not load the kernel again.
 */
export const MachineStateSpec = defineState({
  name: 'x86 machine',
  version: 1,
  schema: z.strictObject({
    vcpus: z.number().int().min(1).max(MPTABLE_MAX_VCPUS),
    memoryBytes: u64,
    acpi: z.boolean(),
    booted: z.boolean(),
    protocol: z.enum(['bzimage', 'pvh']).nullable(),
    /** The ACPI PM1 registers (the guest's enabled power button), when the machine serves them. */
    pm1: z.strictObject({ status: u16, enable: u16, control: u16 }).optional(),
  }),
});

/** The in-memory form of the machine's state. */
export type MachineState = z.output<typeof MachineStateSpec.schema>;

/** What the restoring machine is: the saved state must describe the same shape. */
export interface MachineShape {
  vcpus: number;
  memoryBytes: bigint;
  acpi: boolean;
}

/** Refuses a state saved by a machine of another shape, or one booted without a protocol. */
export function checkMachineState(s: MachineState, own: MachineShape): void {
  const bad = (why: string): never => {
    throw new X86BootError('State', why, {});
  };
  if (s.vcpus !== own.vcpus) bad(`it was saved with ${s.vcpus} vCPUs, this machine has ${own.vcpus}`);
  if (s.memoryBytes !== own.memoryBytes)
    bad(`it was saved with ${s.memoryBytes} bytes of RAM, this machine has ${own.memoryBytes}`);
  if (s.acpi !== own.acpi) bad(`it was saved with acpi ${s.acpi}, this machine has acpi ${own.acpi}`);
  if (s.booted !== (s.protocol !== null)) bad('booted and protocol disagree');
}

/**
 * The machine's Snapshottable (id 'machine', walked in the 'machine' phase). It lives beside the
 * X86Machine rather than in it: the shape is known when the plugin registers, and whether the guest
 * booted is asked of the machine when saving.
 */
export class MachineSnapshot implements Snapshottable<MachineState> {
  readonly id = 'machine';
  readonly stateSpec = MachineStateSpec;
  /**
   * Set by loadState when the saved machine had booted its guest: a restored machine must not load
   * the kernel or set up vCPUs again (the restore flow of issue 14 reads it; vCPU state comes from
   * the vCPUs' own snapshots).
   */
  restoredBoot: 'bzimage' | 'pvh' | undefined;

  /** `shape`: what this machine is; `bootedWith`: the protocol the machine booted with, if it did. */
  constructor(
    private readonly shape: MachineShape,
    private readonly bootedWith: () => 'bzimage' | 'pvh' | undefined,
  ) {}

  /** The PM1 registers, when the machine serves them (set by the plugin once it made them). */
  pm1?: { save(): Pm1State; load(s: Pm1State): void };

  saveState(): MachineState {
    const protocol = this.bootedWith() ?? this.restoredBoot;
    const pm1 = this.pm1?.save();
    return { ...this.shape, booted: protocol !== undefined, protocol: protocol ?? null, ...(pm1 ? { pm1 } : {}) };
  }

  checkState(s: MachineState): void {
    checkMachineState(s, this.shape);
  }

  loadState(s: MachineState): void {
    this.restoredBoot = s.protocol ?? undefined;
    if (s.pm1) this.pm1?.load(s.pm1);
  }
}

/**
 * The check a VcpuSnapshot of an x86 vCPU runs before anything is restored: the payload schema, the backend's
 * checks of its opaque blobs (KVM: their sizes), and the saved CPUID against the one the vCPU has (set by the
 * restoring machine from this host's): another CPU's features are refused in one line. Sets nothing.
 */
export function x86VcpuStateCheck(vcpu: Vcpu): (state: VcpuState) => void {
  return (state) => {
    const p = parseX86VcpuState(state);
    x86Vcpu(vcpu).checkExtendedState(p.extended);
    const diff = p.cpuid && cpuidDifference(p.cpuid, x86Vcpu(vcpu).getCpuid());
    if (diff)
      throw new X86BootError(
        'State',
        `vCPU ${vcpu.index}: the saved CPUID is not this host's (${diff}); ` +
          'a snapshot restores only where the CPU offers the same features',
        { index: vcpu.index },
      );
  };
}
