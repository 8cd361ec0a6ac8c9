/**
 * `npm run fuzz -- [--target NAME]... [--cases N] [--seed S] [--list]`: runs fuzz targets (this folder's
 * `NAME.fuzz.test.js`) for longer than the unit tier does, in one mocha process with no time limit per test.
 * `--cases` sets TSVMM_FUZZ_RUNS (cases per target), `--seed` TSVMM_SEED (replay); no `--target` runs all.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** What the command line asked for. */
export interface FuzzArgs {
  targets: string[];
  cases?: number;
  seed?: number;
  list: boolean;
}

/** A command line the fuzz command cannot run: the message says what to write instead. */
export class FuzzUsageError extends Error {}

const SUFFIX = '.fuzz.test.js';

/** The targets compiled in `dir` (file names without `.fuzz.test.js`), sorted. */
export function fuzzTargets(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith(SUFFIX))
    .map((f) => f.slice(0, -SUFFIX.length))
    .sort();
}

const positiveInt = (flag: string, v: string | undefined, min: number): number => {
  const n = Number(v);
  if (v === undefined || !Number.isSafeInteger(n) || n < min)
    throw new FuzzUsageError(`${flag} needs an integer of at least ${min}, not ${v ?? 'nothing'}`);
  return n;
};

/** Parses the arguments against the known targets; throws FuzzUsageError naming the problem. */
export function parseFuzzArgs(argv: readonly string[], known: readonly string[]): FuzzArgs {
  const out: FuzzArgs = { targets: [], list: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--target' || a === '-t') {
      const t = argv[++i];
      if (t === undefined || !known.includes(t))
        throw new FuzzUsageError(`unknown target ${t ?? '(none)'}; targets: ${known.join(', ')}`);
      out.targets.push(t);
    } else if (a === '--cases' || a === '-n') out.cases = positiveInt(a, argv[++i], 1);
    else if (a === '--seed') out.seed = positiveInt(a, argv[++i], -(2 ** 31)) | 0;
    else if (a === '--list') out.list = true;
    else throw new FuzzUsageError(`unknown argument ${a}; usage: --target NAME... --cases N --seed S --list`);
  }
  return out;
}

/** The mocha command line and environment for `args` (targets compiled in `dir`, mocha under `root`). */
export function fuzzCommand(
  args: FuzzArgs,
  known: readonly string[],
  dir: string,
  root: string,
  env: NodeJS.ProcessEnv,
): { argv: string[]; env: NodeJS.ProcessEnv } {
  const targets = args.targets.length ? args.targets : known;
  return {
    argv: [
      join(root, 'node_modules', 'mocha', 'bin', 'mocha.js'),
      '--config',
      join(root, '.mocharc.json'),
      '--timeout',
      '0',
      ...targets.map((t) => join(dir, `${t}${SUFFIX}`)),
    ],
    env: {
      ...env,
      ...(args.cases !== undefined ? { TSVMM_FUZZ_RUNS: String(args.cases) } : {}),
      ...(args.seed !== undefined ? { TSVMM_SEED: String(args.seed) } : {}),
    },
  };
}

function main(): number {
  const dir = dirname(fileURLToPath(import.meta.url));
  const root = join(dir, '..', '..', '..');
  const known = fuzzTargets(dir);
  let args: FuzzArgs;
  try {
    args = parseFuzzArgs(process.argv.slice(2), known);
  } catch (e) {
    if (!(e instanceof FuzzUsageError)) throw e;
    process.stderr.write(`fuzz: ${e.message}\n`);
    return 2;
  }
  if (args.list) {
    process.stdout.write(`${known.join('\n')}\n`);
    return 0;
  }
  const cmd = fuzzCommand(args, known, dir, root, process.env);
  const r = spawnSync(process.execPath, cmd.argv, { stdio: 'inherit', env: cmd.env, cwd: root });
  return r.status ?? 1;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) process.exitCode = main();
