import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { projectLayout } from '../../hosts/sandbox/sandbox.js';

/** The tiny guest with the privilege probe (fixtures/probe), relative to the project root. */
export const PROBE_VM = 'test/privilege/fixtures/probe-vm.yaml';

/** `vmm run --force <PROBE_VM> ...args` with TSVMM_PROBE=probes, from `cwd` (the project root by default). */
export function runProbeVm(
  probes: string,
  args: string[] = [],
  o: { cwd?: string; wrap?: (argv: string[]) => string[] } = {},
): SpawnSyncReturns<string> {
  const cwd = o.cwd ?? projectLayout().root;
  const argv = [process.execPath, 'bin/vmm.js', 'run', '--force', ...args, PROBE_VM];
  const full = o.wrap ? o.wrap(argv) : argv;
  return spawnSync(full[0], full.slice(1), {
    cwd,
    encoding: 'utf8',
    timeout: 50_000,
    env: { ...process.env, TSVMM_PROBE: probes, VMM_BUNDLE: '0' },
  });
}

/** The `probe <what>: <outcome>` lines of a run. */
export function probeLines(stderr: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of stderr.matchAll(/^probe (\w+): (.*)$/gm)) out[m[1]] = m[2];
  return out;
}

/** Fields of the `status` probe: Uid, CapEff, NoNewPrivs, Seccomp. */
export function statusFields(line: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (line ?? '').split('; ')) {
    const m = /^(\w+): (.*)$/.exec(part);
    if (m) out[m[1]] = m[2].trim();
  }
  return out;
}
