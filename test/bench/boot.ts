import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchInitramfs } from './guest/initramfs.js';
import { vmmMemory, type VmmMemory } from './guest/proc-memory.js';
import { whyFailed } from './guest/launch.js';
import { qemuReadyMs } from './guest/qemu-ready.js';
import { bootTimerLog, exitSummary, runGuest, type GuestRunResult } from './guest/run-guest.js';
import { startupSummary } from './first-run.js';
import { oursArgv, qemuBenchArgv, type GuestSpec } from './guest/vmms.js';
import { pairedRow } from './rows.js';
import { summarize } from './stats.js';
import type { BenchName, GuestBenchOptions, Row } from './types.js';

export type { GuestBenchOptions } from './types.js';

const MEM_MIB = 256;
const VCPUS = 1;
const QEMU_PEER = 'QEMU -M microvm -accel kvm, same PVH vmlinux/initramfs/cmdline';

/** One VMM's figures over the repeats of bootBench / bootCloudBench (index = repeat). */
export interface Side {
  initMs: number[];
  markerMs: number[];
  readyMs: number[];
  memMiB: number[];
  pssMiB: number[];
  problems: string[];
}
/** An empty Side. */
export const side = (): Side => ({
  initMs: [],
  markerMs: [],
  readyMs: [],
  memMiB: [],
  pssMiB: [],
  problems: [],
});

/**
 * One boot of either VMM: init marker time, memory at idle (the guest script must print BENCH-IDLE and then idle
 * for at least a second), and (ours, where the host has the boot-timer) the boot-timer log. `alongside` runs while
 * the VM does (e.g. configuring the host end of its tap; `ended()` turns true when the VMM is gone). Returns the run
 * (the script's BENCH values are in r.l.values).
 */
export async function bootOnce(
  which: 'ours' | 'qemu',
  g: GuestSpec,
  s: Side,
  i: number,
  alongside?: (ended: () => boolean) => Promise<unknown>,
): Promise<GuestRunResult> {
  const argv = which === 'ours' ? oursArgv(g, `boot-${i}`) : { argv: qemuBenchArgv(g), env: process.env };
  let mem: VmmMemory | undefined;
  let sampling: Promise<void> | undefined;
  let ended = false;
  const beside = alongside?.(() => ended);
  const r = await runGuest(argv.argv, {
    env: argv.env,
    timeoutMs: 420_000,
    onLine: (line, _ms, l) => {
      if (line === 'BENCH-IDLE' && l.child.pid) {
        const pid = l.child.pid;
        sampling = new Promise((res) =>
          setTimeout(() => {
            try {
              mem = vmmMemory(pid, g.memoryMiB << 20);
            } catch {
              /* gone */
            }
            res();
          }, 700),
        );
      }
    },
  });
  ended = true;
  await Promise.all([sampling, beside]);
  if (!r.finished || r.l.initMs === undefined) {
    s.problems.push(`${which}: ${r.problem ?? 'no init marker'}: ${whyFailed(r.l).slice(0, 400)}`);
    return r;
  }
  s.initMs[i] = r.l.initMs;
  if (mem) {
    s.memMiB[i] = mem.overheadKiB / 1024;
    s.pssMiB[i] = mem.pssKiB / 1024;
  }
  if (which === 'ours') {
    const bt = bootTimerLog(r.l.stderr);
    if (bt) {
      s.markerMs[i] = bt.bootTimeMs;
      if (bt.sinceStartedMs !== undefined) s.readyMs[i] = bt.time - bt.sinceStartedMs - r.l.spawnEpochMs;
    }
  }
  return r;
}

const dense = (a: number[]) => a.filter((x) => x !== undefined);

/**
 * Boot to init, VMM memory and start-to-ready from the same runs: per repeat, QEMU boots,
 * ours boots, QEMU starts paused (-S) for its ready time. Guest: `quiet`, script prints
 * BENCH-IDLE and sleeps 2 s (memory is sampled 0.7 s after BENCH-IDLE), then powers off.
 */
export async function bootBench(o: GuestBenchOptions): Promise<Row[]> {
  const dir = mkdtempSync(join(tmpdir(), 'tsvmm-bench-boot-'));
  const ours = side(),
    qemu = side();
  try {
    const g: GuestSpec = {
      kit: o.kit,
      initramfs: benchInitramfs(o.kit, dir, 'boot', 'echo BENCH-IDLE\nsleep 2'),
      memoryMiB: MEM_MIB,
      vcpus: VCPUS,
      dir,
    };
    for (let i = 0; i < o.repeats; i++) {
      await bootOnce('qemu', g, qemu, i);
      const r = await bootOnce('ours', g, ours, i);
      o.log(`boot ours repeat ${i + 1}: ${exitSummary(r.l.stderr) ?? 'no exit statistics logged'}`);
      o.log(`start ours repeat ${i + 1}: ${startupSummary(r.l.stderr, r.l.spawnEpochMs) ?? 'no start-up marks'}`);
      if (o.selected.has('start')) {
        try {
          qemu.readyMs[i] = await qemuReadyMs(g, `ready-${i}`);
        } catch (e) {
          qemu.problems.push(`qemu -S: ${(e as Error).message}`);
        }
      }
      o.log(
        `boot ${o.where} repeat ${i + 1}/${o.repeats}: init qemu ${qemu.initMs[i]?.toFixed(0) ?? 'n/a'} ms, ours ${ours.initMs[i]?.toFixed(0) ?? 'n/a'} ms` +
          ` (boot-timer ${ours.markerMs[i]?.toFixed(0) ?? 'n/a'} ms); overhead MiB qemu ${qemu.memMiB[i]?.toFixed(1) ?? 'n/a'}, ours ${ours.memMiB[i]?.toFixed(1) ?? 'n/a'};` +
          ` ready qemu ${qemu.readyMs[i]?.toFixed(0) ?? 'n/a'} ms, ours ${ours.readyMs[i]?.toFixed(0) ?? 'n/a'} ms`,
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const row = (
    id: string,
    bench: BenchName,
    label: string,
    unit: string,
    o2: number[],
    p: number[],
    extra: Partial<Row> = {},
  ): Row =>
    pairedRow({ id, bench, label, unit, better: 'lower', where: o.where, peer: QEMU_PEER, ...extra }, o2, p, {
      ours: ours.problems,
      peer: qemu.problems,
    });
  const rows: Row[] = [];
  if (o.selected.has('boot')) {
    rows.push(
      row(
        'boot.init',
        'boot',
        'Process spawn to the init marker line on the serial console',
        'ms',
        ours.initMs,
        qemu.initMs,
        {
          target: { op: '<=', value: 0.8 },
          notes: `${MEM_MIB} MiB, ${VCPUS} vCPU, cmdline + quiet; both measured by the parent from spawn to the TSVMM-INIT-OK console line`,
        },
      ),
    );
    rows.push({
      id: 'boot.marker',
      bench: 'boot',
      label: 'Ours: VM assembly to the boot-timer device write (devmem 0xd0000000)',
      unit: 'ms',
      better: 'lower',
      where: o.where,
      peer: 'none (QEMU has no boot-timer device)',
      ours: summarize(dense(ours.markerMs)),
      na: dense(ours.markerMs).length
        ? 'n/a: ours only (no QEMU equivalent)'
        : `n/a: no boot-timer log line: ${ours.problems[0] ?? 'boot-timer did not report'}`,
    });
  }
  if (o.selected.has('memory')) {
    rows.push(
      row(
        'memory.overhead',
        'memory',
        "VMM resident memory above guest RAM (RSS minus the guest RAM mapping's RSS), guest idle after boot",
        'MiB',
        ours.memMiB,
        qemu.memMiB,
        {
          notes:
            'sampled from /proc/<pid>/smaps 0.7 s after the guest printed BENCH-IDLE; PSS of the whole process in values of memory.pss',
        },
      ),
    );
    rows.push(
      row(
        'memory.pss',
        'memory',
        'Whole VMM process PSS (guest RAM included), guest idle after boot',
        'MiB',
        ours.pssMiB,
        qemu.pssMiB,
      ),
    );
  }
  if (o.selected.has('start')) {
    rows.push(
      row(
        'start.ready',
        'start',
        "Process start to ready: ours = spawn to lifecycle 'started' (vCPUs entering KVM_RUN); QEMU = spawn with -S to the QMP greeting",
        'ms',
        ours.readyMs,
        qemu.readyMs,
        {
          notes: "ours from the boot-timer log (time - sinceStartedMs) against the parent's spawn time, same clock",
        },
      ),
    );
  }
  return rows;
}
