import { blockBench } from './block.js';
import { bootBench } from './boot.js';
import { bootArm64Bench } from './boot-arm64.js';
import { cloudBench } from './cloud.js';
import { initcallBench } from './initcalls.js';
import { migrationBench } from './migration.js';
import { netBench } from './net.js';
import { startApiBench } from './start-api.js';
import { vhostBench } from './vhost.js';
import { vfioBench, vfioBenchSandbox } from './vfio.js';
import type { GuestBench } from './types.js';

/**
 * Every benchmark that boots Linux guests (on this host when its KVM boots Linux, otherwise all inside ONE
 * sandbox boot), in the order the results list them. To add rows: write test/bench/<name>.ts exporting
 * `async (o: GuestBenchOptions) => Row[]` (ours and its peer in the same run, ratios per repeat; see net.ts)
 * and add ONE line here. `names` are what `npm run bench -- --only` accepts; the rows' `bench` is one of them.
 */
export const GUEST_BENCHES: readonly GuestBench[] = [
  { names: ['boot', 'memory', 'start'], run: bootBench },
  { names: ['initcalls'], run: initcallBench },
  { names: ['block'], run: (o) => blockBench(o) },
  { names: ['net'], run: (o) => netBench(o) },
  { names: ['start-api'], run: startApiBench },
  { names: ['boot-cloud', 'block-pci', 'net-pci'], run: cloudBench },
  { names: ['vhost'], run: vhostBench },
  { names: ['restore', 'migration'], run: migrationBench },
  { names: ['vfio'], run: vfioBench, sandbox: vfioBenchSandbox },
  { names: ['boot-arm64'], run: bootArm64Bench, host: true },
];

/** Every name `--only` accepts, in result order: `exit` (host and sandbox, no guest) then the guest benchmarks'. */
export const BENCH_NAMES: readonly string[] = ['exit', ...GUEST_BENCHES.flatMap((b) => b.names)];
