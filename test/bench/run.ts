/**
 * `npm run bench [-- --only exit,boot] [--repeats N] [--no-sandbox]`
 * Every figure is ours next to a peer's, measured in the same run, with the ratio per repeat.
 * Where: the exit round trip runs on this host's /dev/kvm and inside the sandbox; the Linux
 * benchmarks (boot, block, net, memory, start) run on the host when its KVM can boot Linux,
 * otherwise inside ONE sandbox boot (hosts/sandbox: L1 Linux under QEMU TCG with a real /dev/kvm); a benchmark
 * that needs another L1 (GuestBench.sandbox, e.g. vfio's IOMMU + NVMe variant) gets one boot of its own.
 */
import 'reflect-metadata';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { guestKit } from '../../hosts/guestkit/kit.js';
import { detectHost } from '../../hosts/sandbox/detect.js';
import { projectLayout, runInSandbox } from '../../hosts/sandbox/sandbox.js';
import { parseBenchArgs, type BenchArgs } from './args.js';
import { exitBench } from './exit/bench.js';
import { machineInfo } from './machine.js';
import { BENCH_NAMES, GUEST_BENCHES } from './registry.js';
import { sandboxGroups, type SandboxGroup } from './sandbox-groups.js';
import { consoleTable, describeRun, markdownTable } from './report/table.js';
import { writeResults } from './report/write.js';
import { tool } from './tools.js';
import type { BenchName, BenchResults, MachineInfo, Row, Where } from './types.js';

const log = (s: string) => process.stderr.write(`bench: ${s}\n`);
const LINUX_BENCHES: BenchName[] = GUEST_BENCHES.filter((b) => !b.host).flatMap((b) => b.names);

/** Rows of the benchmarks that need a Linux guest, run here (host with hardware KVM, or inside L1). */
async function linuxBenches(
  a: BenchArgs,
  where: Where,
  selected: Set<BenchName>,
  host = false,
): Promise<{ rows: Row[]; problems: string[] }> {
  const rows: Row[] = [];
  const problems: string[] = [];
  const wanted = GUEST_BENCHES.filter((b) => !!b.host === host && b.names.some((n) => selected.has(n)));
  if (!wanted.length) return { rows, problems };
  const kit = await guestKit({ log: () => {} });
  const o = { repeats: a.repeats, where, kit, log, selected };
  for (const b of wanted) {
    const t0 = Date.now();
    try {
      rows.push(...(await b.run(o)));
    } catch (e) {
      problems.push(`${b.names.join('/')} ${where}: ${(e as Error).stack ?? e}`);
    }
    log(`${b.names.join('/')} ${where}: ${Math.round((Date.now() - t0) / 1000)} s`);
  }
  return { rows, problems };
}

function naRows(names: BenchName[], where: Where, reason: string): Row[] {
  return names.map((b) => ({
    id: `${b}.*`,
    bench: b,
    label: b,
    unit: '-',
    better: 'lower',
    where,
    peer: '-',
    na: `n/a: ${reason}`,
  }));
}

/** Inside L1: run what was asked, write rows + L1's machine info for the outer run. */
async function inner(a: BenchArgs): Promise<void> {
  const selected = new Set(a.only);
  const rows: Row[] = [];
  const problems: string[] = [];
  if (selected.has('exit'))
    rows.push(...(await exitBench({ repeats: a.repeats, exits: a.exits ?? 4000, where: 'sandbox', log })));
  const lin = await linuxBenches(a, 'sandbox', selected);
  rows.push(...lin.rows);
  problems.push(...lin.problems);
  const out = process.env.TSVMM_SANDBOX_OUT ?? '/tsvmm/out';
  const { writeFileSync } = await import('node:fs');
  writeFileSync(join(out, 'bench-inner.json'), JSON.stringify({ machine: machineInfo(), rows, problems }));
  log(`inner: ${rows.length} rows written`);
}

/** One sandbox L1 boot (the group's variant, or the usual microvm L1) running the group's benchmarks inside. */
async function sandboxRun(
  a: BenchArgs,
  g: SandboxGroup,
): Promise<{ rows: Row[]; problems: string[]; machine?: MachineInfo }> {
  const problems: string[] = [];
  const files = mkdtempSync(join(tmpdir(), 'tsvmm-bench-l1-'));
  try {
    // Compile the C tools here: L1 has no compiler. They live in the build folder L1 gets.
    tool('kvm-exit-loop');
    tool('guestbench');
    const variant = g.sandbox?.(files);
    const { compiled } = projectLayout();
    const collect = join(a.out ?? join(projectLayout().root, 'bench-results'), '.sandbox-out', variant?.name ?? '');
    rmSync(join(collect, 'bench-inner.json'), { force: true });
    const args = [
      '--inner',
      '--only',
      g.names.join(','),
      '--repeats',
      String(a.repeats),
      ...(a.exits ? ['--exits', String(a.exits)] : []),
    ];
    let pending = '';
    log(`starting the sandbox${variant ? ` (${variant.name})` : ''} for ${g.names.join(',')} (QEMU TCG L1; a while)`);
    const res = await runInSandbox(`exec node ${join(compiled, 'test', 'bench', 'run.js')} ${args.join(' ')}`, {
      timeoutMs: 60 * 60_000,
      collectInto: collect,
      memoryMiB: 3584,
      cpus: 2,
      variant,
      ledger: { source: 'bench' },
      onOutput: (s) => {
        pending += s;
        const lines = pending.split('\n');
        pending = lines.pop()!;
        for (const line of lines)
          if (line.includes('bench: ')) process.stderr.write(`[sandbox] ${line.replace(/\r$/, '').trim()}\n`);
      },
    });
    const file = join(collect, 'bench-inner.json');
    if (existsSync(file)) {
      const j = JSON.parse(readFileSync(file, 'utf8')) as { machine: MachineInfo; rows: Row[]; problems: string[] };
      return { rows: j.rows, problems: j.problems.map((p) => `sandbox: ${p}`), machine: j.machine };
    }
    problems.push(res.report);
    const why = `the sandbox run produced no results (${res.report.split('\n')[0]})`;
    return { rows: naRows(g.names, 'sandbox', why), problems };
  } catch (e) {
    return { rows: naRows(g.names, 'sandbox', `the sandbox could not run: ${(e as Error).message}`), problems };
  } finally {
    rmSync(files, { recursive: true, force: true });
  }
}

async function outer(a: BenchArgs): Promise<void> {
  const started = Date.now();
  const selected = new Set(a.only);
  const host = detectHost();
  const machine = machineInfo();
  const rows: Row[] = [];
  const problems: string[] = [];
  let sandboxMachine: MachineInfo | undefined;
  log(
    `machine: ${machine.cpuModel}, ${machine.cpus} CPUs, KVM ${machine.hostKvm}; running ${a.only.join(',')} x ${a.repeats}`,
  );

  if (selected.has('exit'))
    rows.push(...(await exitBench({ repeats: a.repeats, exits: a.exits ?? 20000, where: 'host', log })));

  const linuxHere = host.canBootLinux;
  const linuxWanted = LINUX_BENCHES.filter((b) => selected.has(b));
  if (linuxHere && linuxWanted.length) {
    const r = await linuxBenches(a, 'host', selected);
    rows.push(...r.rows);
    problems.push(...r.problems);
  }
  const own = GUEST_BENCHES.filter((b) => b.host).flatMap((b) => b.names.filter((n) => selected.has(n)));
  if (own.length && !a.sandbox) rows.push(...naRows(own, 'sandbox', 'skipped (--no-sandbox)'));
  else if (own.length) {
    const r = await linuxBenches(a, 'sandbox', selected, true);
    rows.push(...r.rows);
    problems.push(...r.problems);
  }
  const sandboxWanted: BenchName[] = [
    ...(selected.has('exit') ? ['exit' as const] : []),
    ...(linuxHere ? [] : linuxWanted),
  ];
  if (sandboxWanted.length && !a.sandbox) {
    rows.push(...naRows(sandboxWanted, 'sandbox', 'skipped (--no-sandbox)'));
  } else {
    for (const g of sandboxGroups(sandboxWanted)) {
      const r = await sandboxRun(a, g);
      rows.push(...r.rows);
      problems.push(...r.problems);
      sandboxMachine ??= r.machine;
    }
  }

  const res: BenchResults = {
    version: 1,
    startedAt: new Date(started).toISOString(),
    durationS: Math.round((Date.now() - started) / 1000),
    repeats: a.repeats,
    selected: a.only,
    machine,
    sandboxMachine,
    rows: rows.sort((x, y) => BENCH_NAMES.indexOf(x.bench) - BENCH_NAMES.indexOf(y.bench)),
    problems,
  };
  console.log(consoleTable(res));
  console.log('');
  console.log(describeRun(res));
  const files = writeResults(a.out ?? join(projectLayout().root, 'bench-results'), res);
  console.log(`\nwritten: ${files.join(', ')} (and latest.*)`);
  if (process.env.BENCH_MARKDOWN) console.log(`\n${markdownTable(res)}`);
}

try {
  const a = parseBenchArgs(process.argv.slice(2));
  await (a.inner ? inner(a) : outer(a));
  process.exit(0);
} catch (e) {
  const err = e as { code?: string; message?: string };
  if (err.code?.startsWith('commander.')) process.exit(err.code === 'commander.helpDisplayed' ? 0 : 2);
  log(`failed: ${(e as Error).stack ?? e}`);
  process.exit(1);
}
