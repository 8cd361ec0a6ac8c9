import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { detectHost, describeKvmHost } from '../../hosts/sandbox/detect.js';
import { projectLayout } from '../../hosts/sandbox/sandbox.js';
import { runLinuxTierInSandbox } from './linux-sandbox.js';
import type { TierReport } from './reporter.js';
import { runFilesWithWatchdog } from './watchdog.js';

/**
 * Test tiers for `node dist/test/runner/run-tiers.js [--tier unit|kvm|linux]...`
 * unit: *.test.js (not kvm/linux); kvm: *.kvm.test.js on the host's /dev/kvm; linux: *.linux.test.js,
 * directly on a hardware-KVM host (or inside L1), else inside ONE sandbox boot.
 * The last line printed is `N passed, N failed`; the exit status is non-zero if anything failed.
 * With CI=true a tier that cannot run counts as a failure.
 */
export type Tier = 'unit' | 'kvm' | 'linux';
const TIERS: Tier[] = ['unit', 'kvm', 'linux'];

interface TierOutcome {
  tier: Tier;
  passed: number;
  failed: number;
  pending: number;
  /** Why the tier did not run (or broke), if it did not. */
  note?: string;
  failures: TierReport['failures'];
  retried?: TierReport['retried'];
  seconds: number;
}

const isCi = () => /^(true|1|yes)$/i.test(process.env.CI ?? '');

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

export function tierOf(file: string): Tier {
  if (file.endsWith('.linux.test.js')) return 'linux';
  if (file.endsWith('.kvm.test.js')) return 'kvm';
  return 'unit';
}

export function mochaArgs(root: string, compiled: string, files: string[], reportFile: string, tier: Tier): string[] {
  return [
    join(root, 'node_modules', 'mocha', 'bin', 'mocha.js'),
    '--config', join(root, '.mocharc.json'),
    '--reporter', join(compiled, 'test', 'runner', 'reporter.js'),
    '--reporter-option', `output=${reportFile}`,
    ...(tier === 'linux' ? ['--timeout', '600000'] : []),
    ...files.map((f) => relative(root, f)),
  ];
}

function runMocha(root: string, args: string[]): Promise<number | null> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd: root, stdio: 'inherit' });
    child.on('error', () => resolve(null));
    child.on('close', (code) => resolve(code));
  });
}

function readReport(file: string): TierReport | undefined {
  try { return JSON.parse(readFileSync(file, 'utf8')) as TierReport; } catch { return undefined; }
}

function outcome(tier: Tier, started: number, report: TierReport | undefined, exit: number | null | undefined, note?: string): TierOutcome {
  const seconds = (Date.now() - started) / 1000;
  if (!report) {
    return { tier, passed: 0, failed: 1, pending: 0, seconds, failures: [], note: note ?? `mocha ended (status ${exit}) without writing its report` };
  }
  const o: TierOutcome = { tier, passed: report.stats.passes, failed: report.stats.failures, pending: report.stats.pending, failures: report.failures, retried: report.retried, seconds, note };
  // a crash after some tests (status != 0 with no failure recorded) still counts
  if (exit !== 0 && exit !== undefined && o.failed === 0) { o.failed = 1; o.note = `${note ? note + '; ' : ''}mocha exited with ${exit}`; }
  return o;
}

function cannotRun(tier: Tier, reason: string): TierOutcome {
  return { tier, passed: 0, failed: isCi() ? 1 : 0, pending: 0, failures: [], seconds: 0, note: `${isCi() ? 'FAILED (CI=true): ' : 'skipped: '}${reason}` };
}

async function runTier(tier: Tier, root: string, compiled: string, tmp: string, only: string[]): Promise<TierOutcome> {
  const files = tierFiles(compiled, tier).filter((f) => only.length === 0 || only.some((o) => relative(compiled, f).includes(o)));
  const started = Date.now();
  if (files.length === 0) return { tier, passed: 0, failed: 0, pending: 0, failures: [], seconds: 0, note: 'no test files' };
  process.stdout.write(`\n=== ${tier} tier: ${files.length} file${files.length === 1 ? '' : 's'} ===\n`);
  const reportFile = join(tmp, `${tier}.json`);

  if (tier === 'kvm' && !existsSync('/dev/kvm')) return cannotRun(tier, 'no /dev/kvm on this host');

  if (tier === 'linux') {
    // one mocha process per file under a deadline (watchdog.ts): a hung guest costs its file, not the run
    const fileTimeoutS = Number(process.env.TSVMM_LINUX_FILE_TIMEOUT_S ?? 900);
    const host = detectHost();
    if (!host.canBootLinux && !host.inSandbox) {
      process.stdout.write(`${describeKvmHost(host)}\nRunning the linux tier inside the sandbox (L1).\n`);
      const { report, notes } = await runLinuxTierInSandbox(files, {
        root, compiled, tmp, fileTimeoutS,
        limitMs: Number(process.env.TSVMM_LINUX_TIER_TIMEOUT_MIN ?? 50) * 60_000,
      });
      return outcome(tier, started, report, report.stats.failures > 0 ? 1 : 0, notes.join('; ') || undefined);
    }
    const report = await runFilesWithWatchdog(files, {
      root,
      mochaArgs: (file, rep) => mochaArgs(root, compiled, [file], rep, tier),
      workDir: join(tmp, 'linux-files'),
      fileTimeoutMs: fileTimeoutS * 1000,
      retryHung: true,
    });
    return outcome(tier, started, report, report.stats.failures > 0 ? 1 : 0);
  }
  const exit = await runMocha(root, mochaArgs(root, compiled, files, reportFile, tier));
  return outcome(tier, started, readReport(reportFile), exit);
}

export async function main(argv: string[]): Promise<number> {
  const tiers: Tier[] = [];
  const only: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--tier') {
      const t = argv[++i] as Tier;
      if (!TIERS.includes(t)) { process.stderr.write(`run-tiers: unknown tier "${t}" (unit, kvm, linux)\n`); return 2; }
      tiers.push(t);
    } else if (argv[i] === '--only' && argv[i + 1] !== undefined) {
      only.push(argv[++i]!);
    } else if (argv[i] === '--help' || argv[i] === '-h') {
      process.stdout.write('usage: run-tiers [--tier unit|kvm|linux]... [--only <path part>]...\n' +
        '  --only keeps the test files whose compiled path contains the text (e.g. --only virtio-net)\n');
      return 0;
    } else { process.stderr.write(`run-tiers: unknown argument ${argv[i]}\n`); return 2; }
  }
  const { root, compiled } = projectLayout();
  const tmp = mkdtempSync(join(tmpdir(), 'tsvmm-tiers-'));
  const results: TierOutcome[] = [];
  try {
    for (const t of tiers.length ? tiers : TIERS) results.push(await runTier(t, root, compiled, tmp, only));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  process.stdout.write('\n=== summary ===\n');
  for (const r of results) {
    process.stdout.write(`${r.tier}: ${r.passed} passed, ${r.failed} failed, ${r.pending} pending (${r.seconds.toFixed(1)} s)${r.note ? ` - ${r.note}` : ''}\n`);
    for (const f of r.failures) process.stdout.write(`  FAIL ${f.fullTitle}${f.file ? ` (${relative(root, f.file)})` : ''}: ${f.message.split('\n')[0]}\n`);
    for (const x of r.retried ?? []) process.stdout.write(`  RETRIED ${relative(root, resolve(root, x.file))} after a hang (${x.reason.split('\n')[0]}); the later run is what counts\n`);
  }
  const passed = results.reduce((n, r) => n + r.passed, 0);
  const failed = results.reduce((n, r) => n + r.failed, 0);
  process.stdout.write(`${passed} passed, ${failed} failed\n`);
  return failed > 0 ? 1 : 0;
}


