import type { GuestKit } from '../../hosts/guestkit/kit.js';
import type { SandboxVariant } from '../../hosts/sandbox/variant.js';

/** One figure of one side (ours or the peer) summarised over the repeats. */
export interface Summary {
  min: number;
  median: number;
  max: number;
  /** Every repeat, in the order they ran. */
  values: number[];
}

/** Where a benchmark ran. */
export type Where = 'host' | 'sandbox';

/**
 * One row of the results: our VMM and a peer on the same work in the same run. `ratio` is
 * ours / peer per repeat (paired: repeat i of ours with repeat i of the peer). Whether lower or
 * higher is better is in `better`; `na` says why a side has no figure (never a made-up number).
 */
export interface Row {
  /** Stable id, e.g. `exit.inline`, `boot.init`, `block.raw.seqread`. */
  id: string;
  /** The benchmark the row belongs to (what `--only` selects). */
  bench: BenchName;
  label: string;
  unit: string;
  better: 'lower' | 'higher';
  where: Where;
  /** What ran as the peer. */
  peer: string;
  ours?: Summary;
  peerSummary?: Summary;
  ratio?: Summary;
  /** Target for the median ratio (e.g. ≤ 1.05). */
  target?: { op: '<=' | '>='; value: number };
  /** Set when a figure is missing: "n/a: <reason>". */
  na?: string;
  notes?: string;
}

/** One benchmark name, as `npm run bench -- --only` takes it (the list: BENCH_NAMES in registry.ts). */
export type BenchName = string;

/**
 * What a guest benchmark gets: repeats, where it runs (host or sandbox), the guest kit, a progress log and the
 * selected benchmark names (one function may serve several names and emit only the selected ones' rows).
 */
export interface GuestBenchOptions {
  repeats: number;
  where: Where;
  kit: GuestKit;
  log: (s: string) => void;
  selected: Set<BenchName>;
}

/** One registered guest benchmark (registry.ts): the `--only` names it serves and the function making its rows. */
export interface GuestBench {
  names: readonly BenchName[];
  /** Runs on the host even when it cannot boot Linux (the benchmark starts its own sandbox, e.g. the arm64 L1). */
  host?: boolean;
  run: (o: GuestBenchOptions) => Promise<Row[]>;
  /**
   * The L1 machine it needs when it runs in the sandbox (hosts/sandbox/variant.ts; host files it needs go in
   * `dir`): such benchmarks get their own L1 boot. Default: the shared microvm L1.
   */
  sandbox?: (dir: string) => SandboxVariant;
}

/** What a run records beside the rows. */
export interface MachineInfo {
  cpuModel: string;
  cpus: number;
  memoryMiB: number;
  kernel: string;
  hostKvm: string;
  inSandbox: boolean;
  node: string;
  qemu?: string;
  gcc?: string;
  loadAverage: number[];
}

/** A bench run as written to bench-results/<timestamp>.json: when and where it ran, and every row. */
export interface BenchResults {
  version: 1;
  startedAt: string;
  durationS: number;
  repeats: number;
  selected: BenchName[];
  /** The machine `npm run bench` ran on. */
  machine: MachineInfo;
  /** The sandbox's L1, when some rows ran there. */
  sandboxMachine?: MachineInfo;
  rows: Row[];
  /** Problems that are not rows (a sandbox that did not boot...). */
  problems: string[];
}
