import type { VcpuExitStats } from '../../../core/hypervisor/hypervisor.js';

/**
 * vCPU exits of every runner summed by kind, as flat counters: `exits.<kind>` (count) and `exitNs.<kind>`
 * (nanoseconds from the exit to the next KVM_RUN), what the kvm plugin reports through counters().
 */
export function exitCounters(stats: readonly VcpuExitStats[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of stats)
    for (const [kind, { count, totalNs }] of Object.entries(s.byKind)) {
      out[`exits.${kind}`] = (out[`exits.${kind}`] ?? 0) + count;
      out[`exitNs.${kind}`] = (out[`exitNs.${kind}`] ?? 0) + Math.round(totalNs);
    }
  return out;
}
