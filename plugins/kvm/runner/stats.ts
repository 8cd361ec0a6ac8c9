import type { VcpuExitStats } from '../../../core/hypervisor/hypervisor.js';
import { STAT_KINDS, statsBytes } from './protocol.js';

/**
 * Exit statistics of a set of vCPUs, kept in SharedArrayBuffers that the workers
 * write (count and nanoseconds from the exit to the next KVM_RUN, per exit kind,
 * plus time spent inside KVM_RUN) and the main thread reads at any time.
 */
export class SharedExitStats implements VcpuExitStats {
  readonly perVcpu: Float64Array[] = [];

  add(): SharedArrayBuffer {
    const sab = new SharedArrayBuffer(statsBytes());
    this.perVcpu.push(new Float64Array(sab));
    return sab;
  }

  get byKind(): Record<string, { count: number; totalNs: number }> {
    const out: Record<string, { count: number; totalNs: number }> = {};
    STAT_KINDS.forEach((k, i) => {
      let count = 0, totalNs = 0;
      for (const s of this.perVcpu) { count += s[i * 2]; totalNs += s[i * 2 + 1]; }
      if (count > 0) out[k] = { count, totalNs };
    });
    return out;
  }

  /** Nanoseconds all vCPUs spent inside KVM_RUN. */
  get guestNs(): number { return this.perVcpu.reduce((a, s) => a + s[STAT_KINDS.length * 2], 0); }

  /** A small table for the end of a run. */
  format(): string {
    const rows = Object.entries(this.byKind).map(([k, { count, totalNs }]) =>
      `${k.padEnd(15)} ${String(count).padStart(10)} ${(totalNs / 1e6).toFixed(2).padStart(12)} ms ${(totalNs / count / 1e3).toFixed(2).padStart(10)} µs/exit`);
    return [`${'exit'.padEnd(15)} ${'count'.padStart(10)} ${'handling'.padStart(15)} ${'mean'.padStart(17)}`, ...rows,
      `in guest: ${(this.guestNs / 1e6).toFixed(2)} ms`].join('\n');
  }
}
