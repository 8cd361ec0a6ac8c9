import { Command, InvalidArgumentError } from 'commander';
import { BENCH_NAMES } from './registry.js';
import type { BenchName } from './types.js';

/**
 * `npm run bench` options after parsing: which benchmarks, how many repeats, whether to use the sandbox, the results
 * folder and the exit count per exit-benchmark repeat.
 */
export interface BenchArgs {
  only: BenchName[];
  repeats: number;
  /** Do not start the nested sandbox (its rows become n/a). */
  sandbox: boolean;
  /** Internal: we are the run inside the sandbox; write rows to $TSVMM_SANDBOX_OUT. */
  inner: boolean;
  out?: string;
  exits?: number;
}

const intArg =
  (min: number, max: number) =>
  (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`an integer from ${min} to ${max}`);
    return n;
  };

/** Parses the bench command line (commander); a bad value ends the process with commander's usage message. */
export function parseBenchArgs(argv: string[]): BenchArgs {
  const p = new Command('bench')
    .description('tsvmm benchmarks: our VMM and a peer on the same work in the same run')
    .option('--only <list>', `comma-separated subset of ${BENCH_NAMES.join(',')}`, (v) => {
      const names = v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
      const bad = names.filter((n) => !BENCH_NAMES.includes(n));
      if (bad.length || names.length === 0)
        throw new InvalidArgumentError(
          `unknown benchmark ${bad.join(',') || '(none)'}; choose from ${BENCH_NAMES.join(',')}`,
        );
      return names;
    })
    .option('--repeats <n>', 'repeats per benchmark (min/median/max over them)', intArg(1, 50), 3)
    .option('--no-sandbox', 'skip what needs the nested sandbox')
    .option(
      '--exits <n>',
      'exits per exit round-trip repeat (default 20000 on the host, 4000 in the sandbox)',
      intArg(100, 10_000_000),
    )
    .option('--out <dir>', 'results folder (default <repo>/bench-results)')
    .option('--inner', 'internal: running inside the sandbox')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  p.parse(argv, { from: 'user' });
  const o = p.opts<{
    only?: BenchName[];
    repeats: number;
    sandbox: boolean;
    inner?: boolean;
    out?: string;
    exits?: number;
  }>();
  return {
    only: o.only ?? [...BENCH_NAMES],
    repeats: o.repeats,
    sandbox: o.sandbox,
    inner: o.inner === true,
    out: o.out,
    exits: o.exits,
  };
}
