import type { VcpuExitStats } from '../../../core/hypervisor/hypervisor.js';
import { STAT_KINDS, statsBytes } from './protocol.js';

/**
 * Exit statistics of a set of vCPUs, kept in SharedArrayBuffers that the workers
 * write (count and nanoseconds from the exit to the next KVM_RUN, per exit kind,
 * plus time spent inside KVM_RUN) and the main thread reads at any time.
 */
export class SharedExitStats implements VcpuExitStats {
  readonly perVcpu: Float64Array[] = [];
  /** Exits the main thread handled (hops), by target: which ports/addresses are worth a fast path. */
  readonly hops = new HopHistogram();
  /** Set by a runner with worker fast paths: their counters. */
  fastPath?: () => { drained: number; ringFull: number; ringNotifies: number; devices: string[] };

  add(): SharedArrayBuffer {
    const sab = new SharedArrayBuffer(statsBytes());
    this.perVcpu.push(new Float64Array(sab));
    return sab;
  }

  get byKind(): Record<string, { count: number; totalNs: number }> {
    const out: Record<string, { count: number; totalNs: number }> = {};
    STAT_KINDS.forEach((k, i) => {
      let count = 0,
        totalNs = 0;
      for (const s of this.perVcpu) {
        count += s[i * 2];
        totalNs += s[i * 2 + 1];
      }
      if (count > 0) out[k] = { count, totalNs };
    });
    return out;
  }

  /** Per vCPU: exits of every kind but 'intr' (kicks), fast-path exits included. */
  activity(): number[] {
    const intr = STAT_KINDS.indexOf('intr');
    return this.perVcpu.map((s) => {
      let n = 0;
      for (let i = 0; i < STAT_KINDS.length; i++) if (i !== intr) n += s[i * 2]!;
      return n;
    });
  }

  /** Nanoseconds all vCPUs spent inside KVM_RUN. */
  get guestNs(): number {
    return this.perVcpu.reduce((a, s) => a + s[STAT_KINDS.length * 2], 0);
  }

  /** A small table for the end of a run. */
  format(): string {
    const rows = Object.entries(this.byKind).map(
      ([k, { count, totalNs }]) =>
        `${k.padEnd(15)} ${String(count).padStart(10)} ${(totalNs / 1e6).toFixed(2).padStart(12)} ms ${(totalNs / count / 1e3).toFixed(2).padStart(10)} µs/exit`,
    );
    const fp = this.fastPath?.();
    return [
      `${'exit'.padEnd(15)} ${'count'.padStart(10)} ${'handling'.padStart(15)} ${'mean'.padStart(17)}`,
      ...rows,
      `in guest: ${(this.guestNs / 1e6).toFixed(2)} ms`,
      ...(fp
        ? [
            `fast path: ${fp.drained} queued writes drained, ring full ${fp.ringFull}x, ${fp.ringNotifies} wake-ups; devices: ${fp.devices.join(', ') || 'none'}`,
          ]
        : []),
      ...(this.hops.size
        ? [
            `hops by target: ${this.hops
              .top(12)
              .map(([k, n]) => `${k} ${n}`)
              .join(', ')}`,
          ]
        : []),
    ].join('\n');
  }
}

/** Counts per access target, e.g. 'pio 0x3fd in', 'mmio 0xd0000000 write'. */
export class HopHistogram {
  private readonly pio = new Map<number, number>();
  private readonly mmio = new Map<bigint, number>();

  addPio(port: number, isWrite: boolean): void {
    const k = port * 2 + (isWrite ? 1 : 0);
    this.pio.set(k, (this.pio.get(k) ?? 0) + 1);
  }

  addMmio(addr: bigint, isWrite: boolean): void {
    const k = addr * 2n + (isWrite ? 1n : 0n);
    this.mmio.set(k, (this.mmio.get(k) ?? 0) + 1);
  }

  get size(): number {
    return this.pio.size + this.mmio.size;
  }

  /** The `n` most frequent targets, most frequent first. */
  top(n: number): [string, number][] {
    const all: [string, number][] = [
      ...[...this.pio].map(([k, c]): [string, number] => [`pio 0x${(k >> 1).toString(16)} ${k & 1 ? 'out' : 'in'}`, c]),
      ...[...this.mmio].map(([k, c]): [string, number] => [
        `mmio 0x${(k >> 1n).toString(16)} ${k & 1n ? 'write' : 'read'}`,
        c,
      ]),
    ];
    return all.sort((a, b) => b[1] - a[1]).slice(0, Math.max(0, n));
  }

  /** As a plain object (for logs): target -> count, the `n` most frequent. */
  toJSON(n = 20): Record<string, number> {
    return Object.fromEntries(this.top(n));
  }
}
