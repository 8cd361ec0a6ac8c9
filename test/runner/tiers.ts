import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { detectHost, describeKvmHost, type HostInfo } from '../../hosts/sandbox/detect.js';
import { guestKit } from '../../hosts/guestkit/kit.js';
import { projectLayout } from '../../hosts/sandbox/sandbox.js';
import { runLinuxTierInSandbox } from './linux-sandbox.js';
import { isIommuFile, mergeOutcomes, runIommuFiles } from './iommu-files.js';
import {
  applyCiPolicy,
  cannotRun,
  exitStatus,
  failFilesWithoutResults,
  isCi,
  outcome,
  summaryLines,
  type Tier,
  type TierOutcome,
} from './counting.js';
import type { TierReport } from './reporter.js';
import { runFilesWithWatchdog } from './watchdog.js';

/**
 * Test tiers for `node dist/test/runner/run-tiers.js [--tier unit|kvm|linux|sandbox]... [--only <path part>]...`
 * unit: *.test.js (not kvm/linux/sandbox); kvm: *.kvm.test.js on the host's /dev/kvm; linux: *.linux.test.js,
 * directly on a hardware-KVM host (or inside L1), else inside ONE sandbox boot; sandbox: *.sandbox.test.js
 * on the host, tests that start the sandbox themselves (`vmm run --sandbox`), never inside L1.
 * The last line printed is `N passed, N failed, N skipped`; the exit status is non-zero if anything
 * failed. With CI=true a tier that cannot run, a skipped test, a stray `.only` and a hang are failures
 * (counting.ts holds the policy); a tier with no test files or a file without results always is.
 */
export type { Tier } from './counting.js';
const TIERS: Tier[] = ['unit', 'kvm', 'linux', 'sandbox'];
/** This module's folder in the compiled tree (the reporter and the mocha setup file live beside it). */
const here = dirname(fileURLToPath(import.meta.url));

/** Test files of a tier under the compiled tree (node_modules and other build folders never enter). */
export function tierFiles(compiled: string, tier: Tier): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.name === 'node_modules' || e.name === '.build' || e.name === '.git') continue;
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.test.js') && tierOf(e.name) === tier) out.push(p);
    }
  };
  walk(compiled);
  return out.sort();
}

/**
 * The tier a compiled test file belongs to, by its name: *.linux.test.js, *.sandbox.test.js, *.kvm.test.js, else unit.
 */
export function tierOf(file: string): Tier {
  if (file.endsWith('.linux.test.js')) return 'linux';
  // tests that start the sandbox themselves (`vmm run --sandbox`): on the host, never inside L1
  if (file.endsWith('.sandbox.test.js')) return 'sandbox';
  if (file.endsWith('.kvm.test.js')) return 'kvm';
  return 'unit';
}

/**
 * The mocha command line for `files` of `tier`: the tier reporter writing `reportFile`, the property
 * seed setup (test/setup/property-seed.ts) and, under CI=true, `--forbid-only`; guest tiers get a long
 * timeout and `--exit`.
 */
export function mochaArgs(root: string, files: string[], reportFile: string, tier: Tier, ci = isCi()): string[] {
  return [
    join(root, 'node_modules', 'mocha', 'bin', 'mocha.js'),
    '--config',
    join(root, '.mocharc.json'),
    '--reporter',
    join(here, 'reporter.js'),
    '--reporter-option',
    `output=${reportFile}`,
    '--require',
    join(here, '..', 'setup', 'property-seed.js'),
    ...(ci ? ['--forbid-only'] : []),
    // a guest test that failed half-way can leave a socket or a server open: mocha ends the process when the
    // tests are done instead of waiting for the watchdog (the report is written at the end of the run)
    ...(tier === 'linux' || tier === 'sandbox' ? ['--timeout', '600000', '--exit'] : []),
    ...files.map((f) => relative(root, f)),
  ];
}

/** What main() runs on; each part replaceable by a test. */
export interface RunnerDeps {
  root: string;
  compiled: string;
  env: NodeJS.ProcessEnv;
  write: (s: string) => void;
  /** stdio of the mocha children ('inherit' shows their spec output live). */
  childStdio: 'inherit' | 'ignore';
  hasKvm: () => boolean;
  host: () => HostInfo;
  /** The guest kit folder for the linux tier on a host that boots Linux itself. */
  kitDir: () => Promise<string>;
  runInSandbox: typeof runLinuxTierInSandbox;
}

function defaultDeps(): RunnerDeps {
  const { root, compiled } = projectLayout();
  return {
    root,
    compiled,
    env: process.env,
    write: (s) => process.stdout.write(s),
    childStdio: 'inherit',
    hasKvm: () => existsSync('/dev/kvm'),
    host: () => detectHost(),
    kitDir: async () => (await guestKit({ log: () => {} })).dir,
    runInSandbox: runLinuxTierInSandbox,
  };
}

function runMocha(d: RunnerDeps, args: string[]): Promise<number | null> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd: d.root, stdio: d.childStdio, env: d.env });
    child.on('error', () => resolve(null));
    child.on('close', (code) => resolve(code));
  });
}

function readReport(file: string): TierReport | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as TierReport;
  } catch {
    return undefined;
  }
}

const NO_RESULTS = 'produced no results (no test in it passed, failed or was skipped)';

async function runTier(tier: Tier, d: RunnerDeps, files: string[], tmp: string): Promise<TierOutcome> {
  const ci = isCi(d.env);
  const started = Date.now();
  const secs = () => (Date.now() - started) / 1000;
  d.write(`\n=== ${tier} tier: ${files.length} file${files.length === 1 ? '' : 's'} ===\n`);
  const reportFile = join(tmp, `${tier}.json`);

  if (tier === 'kvm' && !d.hasKvm()) return cannotRun(tier, 'no /dev/kvm on this host', ci);
  if (tier === 'sandbox' && d.host().inSandbox)
    return cannotRun(tier, 'inside the sandbox (L1): these tests start it themselves', ci);

  if (tier === 'linux') {
    // one mocha process per file under a deadline (watchdog.ts): a hung guest costs its file, not the run
    const fileTimeoutS = Number(d.env.TSVMM_LINUX_FILE_TIMEOUT_S ?? 900);
    const host = d.host();
    if (!host.inSandbox && files.some(isIommuFile)) {
      // VFIO proofs need the IOMMU + NVMe L1 (hosts/sandbox/vfio-variant.ts): one boot of it, then the rest
      const sandboxOpts = {
        root: d.root,
        compiled: d.compiled,
        tmp,
        fileTimeoutS,
        write: d.write,
        limitMs: 15 * 60_000,
      };
      const iommu = await runIommuFiles(files.filter(isIommuFile), sandboxOpts, d.runInSandbox);
      const mine = outcome(
        tier,
        secs(),
        iommu.report,
        iommu.report.stats.failures > 0 ? 1 : 0,
        iommu.notes.join('; ') || undefined,
      );
      const rest = files.filter((f) => !isIommuFile(f));
      return rest.length > 0 ? mergeOutcomes(mine, await runTier(tier, d, rest, tmp)) : mine;
    }
    if (!host.canBootLinux && !host.inSandbox) {
      d.write(`${describeKvmHost(host)}\nRunning the linux tier inside the sandbox (L1).\n`);
      const { report, notes } = await d.runInSandbox(files, {
        root: d.root,
        compiled: d.compiled,
        tmp,
        fileTimeoutS,
        write: d.write,
        limitMs: Number(d.env.TSVMM_LINUX_TIER_TIMEOUT_MIN ?? 70) * 60_000,
      });
      return outcome(tier, secs(), report, report.stats.failures > 0 ? 1 : 0, notes.join('; ') || undefined);
    }
    // Linux boots here: the linux tests get what the sandbox gives them (the guest kit, TSVMM_LINUX)
    let kitDir: string;
    try {
      kitDir = await d.kitDir();
    } catch (e) {
      return cannotRun(tier, `no guest kit: ${(e as Error).message}`, ci);
    }
    const report = await runFilesWithWatchdog(files, {
      root: d.root,
      mochaArgs: (file, rep) => mochaArgs(d.root, [file], rep, tier, ci),
      workDir: join(tmp, 'linux-files'),
      fileTimeoutMs: fileTimeoutS * 1000,
      retryHung: true,
      write: d.write,
      stdio: d.childStdio,
      env: { ...d.env, TSVMM_LINUX: '1', TSVMM_GUESTKIT_DIR: kitDir },
    });
    return outcome(tier, secs(), report, report.stats.failures > 0 ? 1 : 0);
  }
  const exit = await runMocha(d, mochaArgs(d.root, files, reportFile, tier, ci));
  const report = readReport(reportFile);
  if (report) failFilesWithoutResults(report, files, d.root, NO_RESULTS);
  return outcome(tier, secs(), report, exit);
}

/** Parses the arguments, runs the tiers, prints the summary; returns the exit status. */
export async function main(argv: string[], deps: Partial<RunnerDeps> = {}): Promise<number> {
  const tiers: Tier[] = [];
  const only: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--tier') {
      const t = argv[++i] as Tier;
      if (!TIERS.includes(t)) {
        process.stderr.write(`run-tiers: unknown tier "${t}" (${TIERS.join(', ')})\n`);
        return 2;
      }
      tiers.push(t);
    } else if (argv[i] === '--only' && argv[i + 1] !== undefined) {
      only.push(argv[++i]!);
    } else if (argv[i] === '--help' || argv[i] === '-h') {
      process.stdout.write(
        'usage: run-tiers [--tier unit|kvm|linux|sandbox]... [--only <path part>]...\n' +
          '  --only keeps the test files whose compiled path contains the text (e.g. --only virtio-net)\n',
      );
      return 0;
    } else {
      process.stderr.write(`run-tiers: unknown argument ${argv[i]}\n`);
      return 2;
    }
  }
  const d: RunnerDeps = { ...defaultDeps(), ...deps };
  const ci = isCi(d.env);
  const tmp = mkdtempSync(join(tmpdir(), 'tsvmm-tiers-'));
  const results: TierOutcome[] = [];
  let matched = 0;
  try {
    for (const t of tiers.length ? tiers : TIERS) {
      const all = tierFiles(d.compiled, t);
      const files = all.filter((f) => only.length === 0 || only.some((o) => relative(d.compiled, f).includes(o)));
      matched += files.length;
      // no files at all is a broken build or tree, never a zero; --only may leave a tier out on purpose
      if (all.length === 0) results.push(outcome(t, 0, undefined, undefined, `no ${t} test files under ${d.compiled}`));
      else if (files.length > 0) results.push(applyCiPolicy(await runTier(t, d, files, tmp), ci));
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  if (only.length > 0 && matched === 0) {
    results.push(
      outcome(tiers[0] ?? 'unit', 0, undefined, undefined, `no test file matches --only ${only.join(', ')}`),
    );
  }
  d.write(`\n=== summary ===\n${summaryLines(results, d.root, ci).join('\n')}\n`);
  return exitStatus(results, ci);
}
