import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchInitramfs } from './guest/initramfs.js';
import { runGuest } from './guest/run-guest.js';
import { oursArgv, qemuBenchArgv, type GuestSpec } from './guest/vmms.js';
import { pairedRow } from './rows.js';
import type { GuestBenchOptions, Row } from './types.js';

/**
 * Where the guest's own boot waits longer under our VMM than under QEMU microvm: one boot each of the same kernel
 * with `printk.time=1 initcall_debug` (kept in the kernel's log, not on the console: `quiet` stays), the guest prints
 * its log after boot (initcalls under 500 µs left out), and the two logs are lined up by initcall and by landmark.
 * The differences go to the bench log; the row is the kernel's own time to running /init.
 */
export const INITCALL_CMDLINE = 'printk.time=1 initcall_debug log_buf_len=4M';
const SCRIPT = `dmesg | awk '!/ calling /{ if (/ returned /) { if ($(NF-1)+0 >= 500) print } else print }'`;

/** One kernel log: each initcall's µs, the time (s) of each line, in order. */
export interface KernelLog {
  initcalls: Map<string, number>;
  lines: { t: number; text: string }[];
}

/** Reads `[  1.234567] text` lines and `initcall f+0x0/0x10 returned 0 after 1234 usecs` among them. */
export function parseKernelLog(console: string): KernelLog {
  const out: KernelLog = { initcalls: new Map(), lines: [] };
  for (const raw of console.split('\n')) {
    const m = /^\[\s*(\d+\.\d+)\] (.*)$/.exec(raw.replace(/\r$/, ''));
    if (!m) continue;
    out.lines.push({ t: Number(m[1]), text: m[2] });
    const ic = /initcall (\S+?)(?:\+0x\w+\/0x\w+)?(?: \[\w+\])? returned -?\d+ after (\d+) usecs/.exec(m[2]);
    if (ic) out.initcalls.set(ic[1], (out.initcalls.get(ic[1]) ?? 0) + Number(ic[2]));
  }
  return out;
}

/** The time (s) of the first line containing `what`. */
export const landmark = (k: KernelLog, what: string): number | undefined =>
  k.lines.find((l) => l.text.includes(what))?.t;

/** The initcalls that took longer under ours, by how much (µs), largest first. */
export function slowerInitcalls(
  ours: KernelLog,
  peer: KernelLog,
  n = 12,
): { name: string; ours: number; peer: number }[] {
  const names = new Set([...ours.initcalls.keys(), ...peer.initcalls.keys()]);
  return [...names]
    .map((name) => ({ name, ours: ours.initcalls.get(name) ?? 0, peer: peer.initcalls.get(name) ?? 0 }))
    .sort((a, b) => b.ours - b.peer - (a.ours - a.peer))
    .slice(0, n);
}

/** The longest gaps between consecutive log lines (where the kernel waited without saying so), longest first. */
export function longestGaps(k: KernelLog, n = 8): { s: number; after: string; before: string }[] {
  const gaps = k.lines.slice(1).map((l, i) => ({ s: l.t - k.lines[i].t, after: k.lines[i].text, before: l.text }));
  return gaps.sort((a, b) => b.s - a.s).slice(0, n);
}

const LANDMARKS = [
  'tsc: Refined TSC',
  'Calibrating delay',
  'clocksource: Switched',
  'Freeing unused kernel',
  'Run /init',
];

/** One boot per VMM with initcall_debug; logs where ours waits longer; row `boot.kernel` (kernel time to /init). */
export async function initcallBench(o: GuestBenchOptions): Promise<Row[]> {
  const dir = mkdtempSync(join(tmpdir(), 'tsvmm-bench-initcalls-'));
  const logs: Partial<Record<'ours' | 'qemu', KernelLog>> = {};
  const problems: { ours: string[]; peer: string[] } = { ours: [], peer: [] };
  try {
    const g: GuestSpec = {
      kit: o.kit,
      initramfs: benchInitramfs(o.kit, dir, 'initcalls', SCRIPT),
      memoryMiB: 256,
      vcpus: 1,
      dir,
      cmdlineExtra: INITCALL_CMDLINE,
    };
    for (const which of ['qemu', 'ours'] as const) {
      const a = which === 'ours' ? oursArgv(g, 'initcalls') : { argv: qemuBenchArgv(g), env: process.env };
      const r = await runGuest(a.argv, { env: a.env, timeoutMs: 300_000 });
      const k = parseKernelLog(r.l.console);
      if (!r.finished || k.lines.length === 0) problems[which === 'ours' ? 'ours' : 'peer'].push(r.problem ?? 'no log');
      else logs[which] = k;
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const { ours, qemu } = logs;
  if (ours && qemu) {
    for (const m of LANDMARKS)
      o.log(
        `initcalls: '${m}' at ours ${landmark(ours, m)?.toFixed(3) ?? '-'} s, qemu ${landmark(qemu, m)?.toFixed(3) ?? '-'} s`,
      );
    for (const s of slowerInitcalls(ours, qemu))
      o.log(`initcalls: ${s.name}: ours ${(s.ours / 1000).toFixed(1)} ms, qemu ${(s.peer / 1000).toFixed(1)} ms`);
    for (const [name, k] of [
      ['ours', ours],
      ['qemu', qemu],
    ] as const)
      for (const gp of longestGaps(k, 6))
        o.log(
          `initcalls: ${name} gap ${(gp.s * 1000).toFixed(0)} ms after '${gp.after.slice(0, 70)}' before '${gp.before.slice(0, 70)}'`,
        );
  }
  const ms = (k?: KernelLog) => [k ? (landmark(k, 'Run /init') ?? NaN) * 1000 : NaN];
  return [
    pairedRow(
      {
        id: 'boot.kernel',
        bench: 'initcalls',
        label: "The guest kernel's own time to running /init (printk time), initcall_debug on",
        unit: 'ms',
        better: 'lower',
        where: o.where,
        peer: 'QEMU -M microvm -accel kvm, same PVH vmlinux/initramfs/cmdline',
        notes: 'one boot each; the differences by initcall and the longest gaps are in the bench log (initcalls: ...)',
      },
      ms(ours),
      ms(qemu),
      problems,
    ),
  ];
}
