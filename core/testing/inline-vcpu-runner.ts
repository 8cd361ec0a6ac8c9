import type { Bus } from '../bus/bus.js';
import type { Vcpu, VcpuExit, VcpuExitKind, VcpuExitStats, VcpuRunner } from '../hypervisor/hypervisor.js';

/** How InlineVcpuRunner runs vCPUs on the main thread: which exits stop it, how many exits per turn, an exit hook. */
export interface InlineRunnerOptions {
  /** Exit kinds that stop the runner (default: hlt, shutdown, system-event, internal-error, fail-entry, unknown). */
  stopOn?: readonly VcpuExitKind[];
  /** Exits handled per vCPU before yielding to the event loop (default 64). */
  batch?: number;
  /** Sees every exit after the bus dispatched it (tests use it to record or to stop). */
  onExit?: (vcpu: number, exit: VcpuExit) => void;
}

const DEFAULT_STOP: readonly VcpuExitKind[] = [
  'hlt',
  'shutdown',
  'system-event',
  'internal-error',
  'fail-entry',
  'unknown',
];

/** Port numbers as bigint, made once per port (the Bus takes bigint addresses; no BigInt per exit). */
const PORT_BIG: bigint[] = [];
function portBig(port: number): bigint {
  return (PORT_BIG[port] ??= BigInt(port));
}

/** Routes a PIO/MMIO exit to the bus; `in`/read exits have their data filled. Exposed for other runners. */
export function dispatchExit(bus: Bus, exit: VcpuExit): void {
  if (exit.kind === 'io') {
    const port = portBig(exit.port);
    const isIn = exit.direction === 'in';
    if (exit.count === 1) {
      // The common case: the whole data view is the one access (no subarray).
      if (isIn) bus.read('pio', port, exit.data);
      else bus.write('pio', port, exit.data);
      return;
    }
    for (let i = 0; i < exit.count; i++) {
      const d = exit.data.subarray(i * exit.size, (i + 1) * exit.size);
      if (isIn) bus.read('pio', port, d);
      else bus.write('pio', port, d);
    }
  } else if (exit.kind === 'mmio') {
    if (exit.isWrite) bus.write('mmio', exit.address, exit.data);
    else bus.read('mmio', exit.address, exit.data);
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

  constructor(
    private readonly vcpus: readonly Vcpu[],
    private readonly bus: Bus,
    private readonly opts: InlineRunnerOptions = {},
  ) {
    this.stopOn = new Set(opts.stopOn ?? DEFAULT_STOP);
    this.finished = new Promise((r) => {
      this.resolveFinished = r;
    });
  }

  async start(): Promise<void> {
    if (this.state !== 'idle') return;
    this.state = 'running';
    this.vcpus.forEach((_, i) => {
      this.active.add(i);
      this.schedule(i);
    });
  }

  private schedule(i: number): void {
    setImmediate(() => this.step(i));
  }

  /** The stats entry of the last exit kind seen (exits come in runs of one kind: no keyed lookup per exit). */
  private lastKind: VcpuExitKind | undefined;
  private lastEntry: { count: number; totalNs: number } = { count: 0, totalNs: 0 };
  private lastStops = false;

  private step(i: number): void {
    if (this.state !== 'running' || !this.active.has(i)) return;
    const batch = this.opts.batch ?? 64;
    // Time is read per run of same-kind exits, not per exit: at a kind change, a stop and the end
    // of the batch (one performance.now() there; per-exit process.hrtime.bigint() pairs cost more
    // than the decode). The exit that changes the kind is billed to the run before it.
    let t0 = performance.now();
    for (let n = 0; n < batch; n++) {
      let exit: VcpuExit;
      try {
        exit = this.vcpus[i].run();
        dispatchExit(this.bus, exit);
        this.opts.onExit?.(i, exit);
      } catch (err) {
        this.lastEntry.totalNs += Math.round((performance.now() - t0) * 1e6);
        this.error = err;
        this.finish(i, { kind: 'internal-error', suberror: -1 });
        return;
      }
      if (exit.kind !== this.lastKind) {
        const t1 = performance.now();
        this.lastEntry.totalNs += Math.round((t1 - t0) * 1e6);
        t0 = t1;
        this.lastKind = exit.kind;
        this.lastEntry = this.stats.byKind[exit.kind] ??= { count: 0, totalNs: 0 };
        this.lastStops = this.stopOn.has(exit.kind);
      }
      this.lastEntry.count++;
      if (this.lastStops || this.state !== 'running') {
        this.lastEntry.totalNs += Math.round((performance.now() - t0) * 1e6);
        if (this.lastStops) this.finish(i, exit);
        return;
      }
    }
    this.lastEntry.totalNs += Math.round((performance.now() - t0) * 1e6);
    this.schedule(i);
  }

  private finish(i: number, exit: VcpuExit): void {
    this.active.delete(i);
    this.state = 'stopped';
    this.resolveFinished({ vcpu: i, exit });
  }

  /** The exception a vCPU run or a dispatch threw, if that is what ended the run. */
  get failure(): unknown {
    return this.error;
  }

  async pause(): Promise<void> {
    if (this.state === 'running') this.state = 'paused';
  }
  async resume(): Promise<void> {
    if (this.state !== 'paused') return;
    this.state = 'running';
    for (const i of this.active) this.schedule(i);
  }
  async stop(): Promise<void> {
    this.state = 'stopped';
  }
}
