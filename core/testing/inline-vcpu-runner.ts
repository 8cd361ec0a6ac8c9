import type { Bus } from '../bus/bus.js';
import type { Vcpu, VcpuExit, VcpuExitKind, VcpuExitStats, VcpuRunner } from '../hypervisor/hypervisor.js';

export interface InlineRunnerOptions {
  /** Exit kinds that stop the runner (default: hlt, shutdown, system-event, internal-error, fail-entry, unknown). */
  stopOn?: readonly VcpuExitKind[];
  /** Exits handled per vCPU before yielding to the event loop (default 64). */
  batch?: number;
  /** Sees every exit after the bus dispatched it (tests use it to record or to stop). */
  onExit?: (vcpu: number, exit: VcpuExit) => void;
}

const DEFAULT_STOP: readonly VcpuExitKind[] = ['hlt', 'shutdown', 'system-event', 'internal-error', 'fail-entry', 'unknown'];

/** Routes a PIO/MMIO exit to the bus; `in`/read exits have their data filled. Exposed for other runners. */
export function dispatchExit(bus: Bus, exit: VcpuExit): void {
  if (exit.kind === 'io') {
    for (let i = 0; i < exit.count; i++) {
      const d = exit.data.subarray(i * exit.size, (i + 1) * exit.size);
      if (exit.direction === 'in') bus.read('pio', BigInt(exit.port), d); else bus.write('pio', BigInt(exit.port), d);
    }
  } else if (exit.kind === 'mmio') {
    if (exit.isWrite) bus.write('mmio', exit.address, exit.data); else bus.read('mmio', exit.address, exit.data);
  }
}

/**
 * Runs vCPUs on the main thread, one batch of run() calls per setImmediate, dispatching
 * io/mmio exits to the Bus. Works with MockVcpu scripts and with real KVM vCPUs for tiny
 * guests (where each run() blocks the main thread until the next exit). `finished`
 * resolves with the first stopping exit.
 */
export class InlineVcpuRunner implements VcpuRunner {
  readonly stats: VcpuExitStats = { byKind: {} };
  private state: 'idle' | 'running' | 'paused' | 'stopped' = 'idle';
  private resolveFinished!: (r: { vcpu: number; exit: VcpuExit }) => void;
  readonly finished: Promise<{ vcpu: number; exit: VcpuExit }>;
  private readonly stopOn: ReadonlySet<VcpuExitKind>;
  private readonly active = new Set<number>();
  private error?: unknown;

  constructor(private readonly vcpus: readonly Vcpu[], private readonly bus: Bus, private readonly opts: InlineRunnerOptions = {}) {
    this.stopOn = new Set(opts.stopOn ?? DEFAULT_STOP);
    this.finished = new Promise((r) => { this.resolveFinished = r; });
  }

  async start(): Promise<void> {
    if (this.state !== 'idle') return;
    this.state = 'running';
    this.vcpus.forEach((_, i) => { this.active.add(i); this.schedule(i); });
  }

  private schedule(i: number): void {
    setImmediate(() => this.step(i));
  }

  private step(i: number): void {
    if (this.state !== 'running' || !this.active.has(i)) return;
    const batch = this.opts.batch ?? 64;
    for (let n = 0; n < batch; n++) {
      let exit: VcpuExit;
      const t0 = process.hrtime.bigint();
      try {
        exit = this.vcpus[i].run();
        dispatchExit(this.bus, exit);
        this.opts.onExit?.(i, exit);
      } catch (err) {
        this.error = err;
        this.finish(i, { kind: 'internal-error', suberror: -1 });
        return;
      }
      const s = (this.stats.byKind[exit.kind] ??= { count: 0, totalNs: 0 });
      s.count++;
      s.totalNs += Number(process.hrtime.bigint() - t0);
      if (this.stopOn.has(exit.kind)) { this.finish(i, exit); return; }
      if (this.state !== 'running') return;
    }
    this.schedule(i);
  }

  private finish(i: number, exit: VcpuExit): void {
    this.active.delete(i);
    this.state = 'stopped';
    this.resolveFinished({ vcpu: i, exit });
  }

  /** The exception a vCPU run or a dispatch threw, if that is what ended the run. */
  get failure(): unknown { return this.error; }

  async pause(): Promise<void> { if (this.state === 'running') this.state = 'paused'; }
  async resume(): Promise<void> {
    if (this.state !== 'paused') return;
    this.state = 'running';
    for (const i of this.active) this.schedule(i);
  }
  async stop(): Promise<void> { this.state = 'stopped'; }
}
