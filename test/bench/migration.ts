import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { projectLayout } from '../../hosts/sandbox/sandbox.js';
import { parseFirstRun } from './first-run.js';
import { benchInitramfs } from './guest/initramfs.js';
import { launch, tailOf, type Launched } from './guest/launch.js';
import { oursArgv, qemuBenchArgv, type GuestSpec } from './guest/vmms.js';
import { Qmp } from './migration-qmp.js';
import { tickGap, type TickGap } from './migration-ticks.js';
import { pairedRow } from './rows.js';
import { summarize } from './stats.js';
import type { GuestBenchOptions, Row } from './types.js';

const MEM_MIB = 256;
/** ms between the guest's console ticks: a pause of the guest shows up as a longer gap between two (tickGap). */
const TICK_MS = 25;
const TICKS = `guestbench tick ${TICK_MS} &\n`;
const IDLE = `${TICKS}echo BENCH-IDLE\nsleep 100000`;
/** The busy guest rewrites 64 MiB of its RAM (a file in its RAM root) over and over. */
const BUSY =
  'dd if=/dev/zero of=/busy bs=1M count=64 2>/dev/null\n' +
  '( while :; do dd if=/dev/zero of=/busy bs=1M count=64 conv=notrunc 2>/dev/null; done ) &\n' +
  `${TICKS}echo BENCH-IDLE\nsleep 100000`;
const WAIT_MS = 300_000;

/** What one repeat measured of one side (ms), with why a figure is missing. */
interface Side {
  restore: number[];
  restoreProcess: number[];
  /** The guest-visible downtime: the pause in the guest's console ticks at the switch-over (tickGap). */
  downtime: Record<'idle' | 'busy', number[]>;
  /** The VMM's own downtime figure (QEMU's query-migrate, ours' log records): not measured the same way. */
  reported: Record<'idle' | 'busy', number[]>;
  total: Record<'idle' | 'busy', number[]>;
  /** Where each repeat's time went (ours): one line per restore / migration, printed with the repeat. */
  breakdown: string[][];
  problems: string[];
}
const side = (): Side => ({
  restore: [],
  restoreProcess: [],
  downtime: { idle: [], busy: [] },
  reported: { idle: [], busy: [] },
  total: { idle: [], busy: [] },
  breakdown: [],
  problems: [],
});

/** Adds a breakdown line to repeat `i` (a line that fails to build says so; the figures stand). */
function note(s: Side, i: number, line: () => string): void {
  let text: string;
  try {
    text = line();
  } catch (e) {
    text = `no breakdown: ${(e as Error).message}`;
  }
  (s.breakdown[i] ??= []).push(text);
}

/** `ms` rounded for a breakdown line. */
const r0 = (ms: number | undefined): string => (ms === undefined || !Number.isFinite(ms) ? '?' : `${Math.round(ms)}`);

/**
 * A VMM's start-up marks (VMM_TIMINGS=1) as epoch ms: its process start is the first KVM_RUN line's epoch less its
 * ms since process start. Undefined without that line.
 */
function markEpochs(
  l: Pick<Launched, 'stderr' | 'spawnEpochMs'>,
): { marks: Record<string, number>; firstRun?: number } | undefined {
  const fr = parseFirstRun(l.stderr, l.spawnEpochMs);
  if (fr.firstRunMs === undefined || fr.execMs === undefined) return undefined;
  const origin = l.spawnEpochMs + fr.execMs;
  const marks: Record<string, number> = {};
  for (const [k, v] of Object.entries(fr.marks)) marks[k] = origin + v;
  return { marks, firstRun: l.spawnEpochMs + fr.firstRunMs };
}

/**
 * Where a migration's downtime went: the source's phases (ms since its stop: paused, states saved, last pages sent,
 * state sent, Ready, the destination's Started, its own stop and release) and the destination's marks (ms after
 * the source's 'stopped' record: its VM built and warmed (negative: before the stop), stream end, Commit, state
 * loaded, started, first KVM_RUN).
 */
export function migrationBreakdown(src: Pick<Launched, 'stderr'>, dst: Launched, stop: number): string {
  const started = logRecord(src.stderr, 'migration: the destination started');
  const phases = (started ?? logRecord(src.stderr, 'migration: committed'))?.phases as
    Record<string, number> | undefined;
  const source = phases ? Object.entries(phases).map(([k, v]) => `${k.replace(/Ms$/, '')} ${r0(v)}`) : ['?'];
  const d = markEpochs(dst);
  const steps = [
    'migration: VM built before the stop',
    'migration: state code warmed',
    'migration: stream ended',
    'migration: Commit',
    'migration: state loaded',
    'started',
    'first KVM_RUN',
  ];
  const dest = d
    ? steps
        .filter((k) => d.marks[k] !== undefined)
        .map((k) => `${k.replace('migration: ', '')} ${r0(d.marks[k]! - stop)}`)
    : ['no timings'];
  return `source (ms since its stop): ${source.join(', ')}; destination (ms after the stop record): ${dest.join(', ')}`;
}

/** Resolves once `check` holds; throws (with the process's tail) when it ends first or after `ms`. */
async function waitFor(l: Launched, check: () => boolean, what: string, ms = WAIT_MS): Promise<void> {
  const end = performance.now() + ms;
  while (!check()) {
    if (l.child.exitCode !== null || l.child.signalCode !== null) throw new Error(`ended before ${what}: ${tailOf(l)}`);
    if (performance.now() > end) throw new Error(`no ${what} in ${ms / 1000} s: ${tailOf(l)}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** The first pino record on `stderr` whose msg is `msg`. */
function logRecord(stderr: string, msg: string): { time: number; [k: string]: unknown } | undefined {
  for (const line of stderr.split('\n')) {
    if (!line.includes(msg)) continue;
    try {
      const j = JSON.parse(line) as { time?: unknown; msg?: unknown };
      if (j.msg === msg && typeof j.time === 'number') return j as { time: number };
    } catch {
      /* not JSON */
    }
  }
  return undefined;
}

const RUNNING = 'migration: the guest runs';

/** Our side: the micro host with the migration plugin's control socket; `vmm <args>` with the bench's env. */
function ours(
  g: GuestSpec,
  name: string,
): { run: string[]; vmm: (...a: string[]) => string[]; env: NodeJS.ProcessEnv; ctl: string } {
  const a = oursArgv(g, name);
  const cfg = parse(readFileSync(a.config, 'utf8')) as { plugins: object[] };
  const ctl = join(g.dir, `${name}.sock`);
  cfg.plugins.push({ name: 'migration', config: { control: ctl } });
  writeFileSync(a.config, stringify(cfg));
  const bin = join(projectLayout().root, 'bin', 'vmm.js');
  return { run: a.argv, vmm: (...x) => [process.execPath, bin, ...x], env: a.env, ctl };
}

/** A launch option that keeps the arrival time (performance.now()) of each of the guest's tick lines in `into`. */
const ticksInto = (into: number[]) => (line: string, ms: number, l: Launched) => {
  if (line.endsWith('TICK')) into.push(l.spawnAt + ms);
};

/** The switch-over pause from both sides' ticks, once the destination ticked (throws where there is no figure). */
async function visibleDowntime(dst: Launched, source: number[], dest: number[]): Promise<TickGap> {
  await waitFor(dst, () => dest.length > 0, "the destination guest's first tick", 60_000);
  const g = tickGap(source, dest);
  if (!g) throw new Error(`no switch-over in the guest's ticks (${source.length} on the source, ${dest.length} after)`);
  return g;
}

/** A tick gap for a breakdown line. */
const gapText = (g: TickGap): string =>
  `guest-visible ${r0(g.downtimeMs)} ms (tick gap ${r0(g.gapMs)} less the usual ${r0(g.normalMs)}; ` +
  `longest stall before the switch-over ${r0(g.sourceStallMs)} ms)`;

/** Boots `argv` and waits for the guest's BENCH-IDLE line (`ticks` gets the guest's tick times). */
async function booted(argv: string[], env: NodeJS.ProcessEnv | undefined, ticks: number[] = []): Promise<Launched> {
  const l = launch(argv, { env, timeoutMs: 900_000, onLine: ticksInto(ticks) });
  await waitFor(l, () => /^BENCH-IDLE\r?$/m.test(l.console), 'BENCH-IDLE');
  return l;
}

/** Ours: `vmm snapshot` of the idle guest, then `vmm restore` timed from spawn to its vCPUs running. */
async function oursRestore(g: GuestSpec, s: Side, i: number): Promise<void> {
  const o = ours(g, `r${i}`);
  const all: Launched[] = [];
  try {
    const src = await booted(o.run, o.env);
    all.push(src);
    const snapDir = join(g.dir, `snap-${i}`);
    const snap = launch(o.vmm('snapshot', o.ctl, snapDir, '--leave-paused'), { env: o.env, timeoutMs: WAIT_MS });
    const r = await snap.done;
    if (r.code !== 0) throw new Error(`vmm snapshot: ${tailOf(snap)}`);
    await src.kill(1000);
    const dst = launch(o.vmm('restore', snapDir), { env: o.env, timeoutMs: WAIT_MS });
    all.push(dst);
    await waitFor(dst, () => logRecord(dst.stderr, RUNNING) !== undefined, 'the restored guest running');
    const rec = logRecord(dst.stderr, RUNNING)!;
    s.restore[i] = rec.time - dst.spawnEpochMs;
    s.restoreProcess[i] = Number(rec.sinceProcessStartMs);
    note(s, i, () => {
      const fr = parseFirstRun(dst.stderr, dst.spawnEpochMs);
      const steps = ['restore: CLI ready', 'restore: snapshot opened', 'config loaded', 'machine built']
        .concat(['restore: memory verified', 'started', 'first KVM_RUN'])
        .filter((k) => fr.marks[k] !== undefined)
        .map((k) => `${k.replace('restore: ', '')} ${r0(fr.marks[k])}`);
      return `restore: spawn to process start ${r0(fr.execMs)} ms; ms since process start: ${steps.join(', ')}`;
    });
  } catch (e) {
    s.problems.push(`restore: ${(e as Error).message}`);
  } finally {
    for (const l of all) await l.kill(1000);
  }
}

/** QEMU: migrate the idle guest into a file (`exec:cat > FILE`), then `-incoming exec:cat FILE` timed to running. */
async function qemuRestore(g: GuestSpec, s: Side, i: number): Promise<void> {
  const file = join(g.dir, `qemu-${i}.mig`);
  const all: Launched[] = [];
  const qmps: Qmp[] = [];
  try {
    const qs = join(g.dir, `qs-${i}.qmp`);
    const src = await booted(qemuBenchArgv(g, ['-qmp', `unix:${qs},server=on,wait=off`]), undefined);
    all.push(src);
    const q = await Qmp.open(qs);
    qmps.push(q);
    await q.run('migrate', { uri: `exec:cat > ${file}` });
    await q.migrated();
    await src.kill(1000);
    const qd = join(g.dir, `qd-${i}.qmp`);
    const dst = launch(qemuBenchArgv(g, ['-qmp', `unix:${qd},server=on,wait=off`, '-incoming', `exec:cat ${file}`]), {
      timeoutMs: WAIT_MS,
    });
    all.push(dst);
    const d = await Qmp.open(qd);
    qmps.push(d);
    const end = performance.now() + WAIT_MS;
    for (;;) {
      const resumed = d.events.find((e) => e.event === 'RESUME');
      if (resumed) {
        s.restore[i] = resumed.at - dst.spawnAt;
        break;
      }
      const st = await d.run('query-status');
      if (st.running === true) {
        s.restore[i] = performance.now() - dst.spawnAt;
        break;
      }
      if (performance.now() > end) throw new Error(`-incoming did not run in time (${String(st.status)})`);
      await new Promise((r) => setTimeout(r, 2));
    }
  } catch (e) {
    s.problems.push(`restore: ${(e as Error).message}`);
  } finally {
    for (const q of qmps) q.close();
    for (const l of all) await l.kill(1000);
    rmSync(file, { force: true });
  }
}

const port = (): number => 20_000 + Math.floor(Math.random() * 20_000);

/**
 * Ours: `vmm receive` + `vmm migrate` over TCP; downtime = the pause in the guest's ticks; reported = the source's
 * stop record to the destination's vCPUs-running record.
 */
async function oursMigrate(g: GuestSpec, kind: 'idle' | 'busy', s: Side, i: number): Promise<void> {
  const o = ours(g, `m${kind}${i}`);
  const all: Launched[] = [];
  const srcTicks: number[] = [];
  const dstTicks: number[] = [];
  try {
    const url = `tcp:127.0.0.1:${port()}`;
    const dst = launch(o.vmm('receive', url), { env: o.env, timeoutMs: WAIT_MS, onLine: ticksInto(dstTicks) });
    all.push(dst);
    await waitFor(dst, () => dst.stderr.includes('listening on'), 'vmm receive listening');
    const src = await booted(o.run, o.env, srcTicks);
    all.push(src);
    const m = launch(o.vmm('migrate', o.ctl, url), { env: o.env, timeoutMs: WAIT_MS });
    if ((await m.done).code !== 0) throw new Error(`vmm migrate: ${tailOf(m)}`);
    await waitFor(dst, () => logRecord(dst.stderr, RUNNING) !== undefined, 'the migrated guest running');
    await src.done;
    const run = logRecord(dst.stderr, RUNNING)!.time;
    const stop = logRecord(src.stderr, 'migration: the guest stopped for the last copy')?.time;
    const start = logRecord(src.stderr, 'migration: sending')?.time;
    if (stop === undefined || start === undefined) throw new Error(`no migration log on the source: ${tailOf(src)}`);
    s.reported[kind][i] = run - stop;
    s.total[kind][i] = run - start;
    const gap = await visibleDowntime(dst, srcTicks, dstTicks);
    s.downtime[kind][i] = gap.downtimeMs;
    note(s, i, () => {
      const firstRun = markEpochs(dst)?.firstRun;
      return (
        `migration ${kind}: ${gapText(gap)}; stop record to the 'guest runs' record ${r0(run - stop)} ms, ` +
        `${r0(firstRun && firstRun - stop)} ms to the first KVM_RUN; ${migrationBreakdown(src, dst, stop)}`
      );
    });
  } catch (e) {
    s.problems.push(`migration ${kind}: ${(e as Error).message}`);
  } finally {
    for (const l of all) await l.kill(1000);
  }
}

/**
 * QEMU: `-incoming tcp:` destination, `migrate` over QMP (downtime-limit 300 ms); downtime = the pause in the guest's
 * ticks; reported and total: query-migrate's figures.
 */
async function qemuMigrate(
  g: GuestSpec,
  kind: 'idle' | 'busy',
  s: Side,
  i: number,
  log: (l: string) => void,
): Promise<void> {
  const all: Launched[] = [];
  const qmps: Qmp[] = [];
  const srcTicks: number[] = [];
  const dstTicks: number[] = [];
  try {
    const p = port();
    const qd = join(g.dir, `qmd-${kind}${i}.qmp`);
    const dst = launch(qemuBenchArgv(g, ['-qmp', `unix:${qd},server=on,wait=off`, '-incoming', `tcp:127.0.0.1:${p}`]), {
      timeoutMs: WAIT_MS,
      onLine: ticksInto(dstTicks),
    });
    all.push(dst);
    const qs = join(g.dir, `qms-${kind}${i}.qmp`);
    const src = await booted(qemuBenchArgv(g, ['-qmp', `unix:${qs},server=on,wait=off`]), undefined, srcTicks);
    all.push(src);
    const q = await Qmp.open(qs);
    qmps.push(q);
    await q.run('migrate-set-parameters', { 'downtime-limit': 300 });
    await q.run('migrate', { uri: `tcp:127.0.0.1:${p}` });
    const r = await q.migrated(120_000).catch(async (e: unknown) => {
      await q.run('migrate_cancel').catch(() => {});
      throw e;
    });
    s.reported[kind][i] = Number(r.downtime);
    s.total[kind][i] = Number(r['total-time']);
    const gap = await visibleDowntime(dst, srcTicks, dstTicks);
    s.downtime[kind][i] = gap.downtimeMs;
    log(`qemu ${kind}: ${gapText(gap)}; query-migrate's downtime ${r0(Number(r.downtime))} ms`);
  } catch (e) {
    s.problems.push(`migration ${kind}: ${(e as Error).message}`);
  } finally {
    for (const q of qmps) q.close();
    for (const l of all) await l.kill(1000);
  }
}

/**
 * Restore to a running vCPU (`restore`) and live migration downtime and total time for an idle and a busy guest
 * (`migration`), ours against QEMU in the same run, 256 MiB micro guests, one vCPU: per repeat each side does the
 * same work one after the other.
 */
export async function migrationBench(o: GuestBenchOptions): Promise<Row[]> {
  const dir = mkdtempSync(join(tmpdir(), 'tsvmm-bench-mig-'));
  const us = side();
  const qemu = side();
  const spec = (kind: 'idle' | 'busy'): GuestSpec => ({
    kit: o.kit,
    initramfs: benchInitramfs(o.kit, dir, `mig-${kind}`, kind === 'idle' ? IDLE : BUSY),
    memoryMiB: MEM_MIB,
    vcpus: 1,
    dir,
  });
  try {
    const idle = spec('idle');
    const busy = spec('busy');
    const f = (x: number | undefined): string => (x === undefined ? 'n/a' : `${x.toFixed(0)} ms`);
    // each figure as it comes (a run cut short by a time limit still says what it measured)
    const said = (i: number, what: string): void => {
      o.log(`migration ${o.where} repeat ${i + 1}: ${what}`);
      for (const line of us.breakdown[i]?.splice(0) ?? []) o.log(`migration ${o.where} repeat ${i + 1} ours: ${line}`);
    };
    for (let i = 0; i < o.repeats; i++) {
      if (o.selected.has('restore')) {
        await qemuRestore(idle, qemu, i);
        said(i, `restore qemu ${f(qemu.restore[i])}`);
        await oursRestore(idle, us, i);
        said(i, `restore ours ${f(us.restore[i])} (process ${f(us.restoreProcess[i])})`);
      }
      if (o.selected.has('migration'))
        for (const [kind, g] of [
          ['idle', idle],
          ['busy', busy],
        ] as const) {
          await qemuMigrate(g, kind, qemu, i, (l) => said(i, l));
          said(i, `downtime ${kind} qemu ${f(qemu.downtime[kind][i])} (its own figure ${f(qemu.reported[kind][i])})`);
          await oursMigrate(g, kind, us, i);
          said(i, `downtime ${kind} ours ${f(us.downtime[kind][i])} (its own figure ${f(us.reported[kind][i])})`);
        }
      o.log(
        `migration ${o.where} repeat ${i + 1}/${o.repeats}: restore qemu ${f(qemu.restore[i])}, ours ${f(us.restore[i])} ` +
          `(process ${f(us.restoreProcess[i])}); downtime idle qemu ${f(qemu.downtime.idle[i])}, ours ` +
          `${f(us.downtime.idle[i])}; busy qemu ${f(qemu.downtime.busy[i])}, ours ${f(us.downtime.busy[i])}; ` +
          `problems: ${[...qemu.problems, ...us.problems].join(' | ') || 'none'}`,
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const row = (
    id: string,
    bench: 'restore' | 'migration',
    label: string,
    a: number[],
    b: number[],
    extra: Partial<Row>,
  ): Row =>
    pairedRow({ id, bench, label, unit: 'ms', better: 'lower', where: o.where, peer: '', ...extra }, a, b, {
      ours: us.problems,
      peer: qemu.problems,
    });
  const rows: Row[] = [];
  if (o.selected.has('restore')) {
    rows.push(
      row(
        'restore.running',
        'restore',
        'Restore of a 256 MiB idle guest: process spawn to its vCPU running',
        us.restore,
        qemu.restore,
        {
          peer: 'QEMU -M microvm -accel kvm -incoming "exec:cat FILE" (the same guest migrated into FILE), spawn to RESUME',
          notes:
            'ours: `vmm restore DIR` (memory mapped from the snapshot file), spawn to the log record of the vCPUs started',
        },
      ),
      {
        id: 'restore.process',
        bench: 'restore',
        label: 'Ours: restore, Node process start to the vCPU running (goal <= 10 ms; Firecracker 3-8 ms on metal)',
        unit: 'ms',
        better: 'lower',
        where: o.where,
        peer: 'none',
        ours: summarize(us.restoreProcess.filter((v) => v !== undefined)),
        na: 'n/a: ours only (performance.now() in the restoring process when its vCPUs started)',
      },
    );
  }
  if (o.selected.has('migration'))
    for (const kind of ['idle', 'busy'] as const) {
      const peer = 'QEMU -M microvm -accel kvm, migrate over TCP (downtime-limit 300 ms), query-migrate';
      rows.push(
        row(
          `migration.${kind}.downtime`,
          'migration',
          `Live migration of a 256 MiB ${kind} guest over TCP: downtime`,
          us.downtime[kind],
          qemu.downtime[kind],
          {
            peer,
            target: { op: '<=', value: 0.17 },
            notes:
              `both: what the guest lives through, measured the same way: the guest prints a line every ${TICK_MS} ms ` +
              '(guestbench tick); the gap from the last line on the source to the first on the destination, less ' +
              'the usual gap',
          },
        ),
        row(
          `migration.${kind}.reported`,
          'migration',
          `Live migration of a 256 MiB ${kind} guest over TCP: each VMM's own downtime figure (not alike)`,
          us.reported[kind],
          qemu.reported[kind],
          {
            peer,
            notes:
              "ours: the source's stop for the last copy to the destination's log record of its vCPUs running; " +
              "QEMU: query-migrate's downtime (its source's stop to the source's end of the stream; the " +
              "destination's load and start are not in it)",
          },
        ),
        row(
          `migration.${kind}.total`,
          'migration',
          `Live migration of a 256 MiB ${kind} guest over TCP: total time`,
          us.total[kind],
          qemu.total[kind],
          {
            peer,
            notes:
              "ours: the source's first frame to the destination's vCPUs running; QEMU: query-migrate's total-time",
          },
        ),
      );
    }
  return rows;
}
