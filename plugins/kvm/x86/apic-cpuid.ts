import type { CpuidEntry } from '../../x86/hypervisor/types.js';

/** CPUID.1:ECX bit 24: the local APIC's timer has TSC-deadline mode (MSR IA32_TSC_DEADLINE). */
export const ECX_TSC_DEADLINE = 1 << 24;

/**
 * What KVM's in-kernel local APIC offers but KVM_GET_SUPPORTED_CPUID leaves out on kernels before 6.14
 * (Documentation/virt/kvm/api.rst, "Known KVM API problems": TSC_DEADLINE may be set when
 * KVM_CAP_TSC_DEADLINE_TIMER is present and the in-kernel LAPIC is in use; QEMU and Cloud Hypervisor set it).
 * Without it Linux calibrates the LAPIC timer against the PIT at boot (~25 ticks, twice), and where that
 * calibration fails (nested, loaded hosts) it runs without high-resolution timers and one-shot ticks.
 * Returns new entries; `entries` is not changed.
 */
export function withInKernelApicFeatures(
  entries: readonly CpuidEntry[],
  apic: { irqchip: boolean; tscDeadline: boolean },
): CpuidEntry[] {
  return entries.map((e) =>
    e.function === 1 && apic.irqchip && apic.tscDeadline ? { ...e, ecx: (e.ecx | ECX_TSC_DEADLINE) >>> 0 } : { ...e },
  );
}
