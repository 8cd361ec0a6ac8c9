/**
 * boot.init on arm64 (issue 20): ours against QEMU `-M virt` with KVM, both inside ONE arm64 L1 (QEMU TCG
 * aarch64 with EL2, hosts/sandbox/arm64.ts) carrying an arm64 qemu-system-aarch64 (arm64-qemu.ts). The guest is
 * the arm64 kit's Debian cloud kernel and initramfs for both; each boot is timed from VMM spawn to the kit's
 * init marker on the console, paired per repeat (QEMU first, then ours).
 */
import { readFileSync } from 'node:fs';
import { scriptInitramfs } from '../../hosts/guestkit/kit.js';
import { prepareArm64Sandbox, runInArm64Sandbox } from '../../hosts/sandbox/arm64.js';
import { arm64QemuTree } from '../../hosts/sandbox/arm64-qemu.js';
import { ARM64_BOOT, arm64BootFigures } from './boot-arm64-args.js';
import { pairedRow } from './rows.js';
import type { GuestBenchOptions, Row } from './types.js';

/** The arm64 L1's limit for the whole run (L1 boot, staging and every guest boot). */
const L1_LIMIT_MS = 12 * 60_000;

/** Runs the arm64 L1 once and gives the boot.init.arm64 row. */
export async function bootArm64Bench(o: GuestBenchOptions): Promise<Row[]> {
  const kit = prepareArm64Sandbox();
  const tree = arm64QemuTree(o.log);
  let pending = '';
  const res = await runInArm64Sandbox(
    `timeout ${L1_LIMIT_MS / 1000 - 90} node dist/test/bench/boot-arm64-main.js /tsvmm ${o.repeats}`,
    {
      timeoutMs: L1_LIMIT_MS,
      trees: { [ARM64_BOOT.qemuRoot]: tree },
      files: {
        '/tsvmm/l2-bench.cpio.gz': Buffer.concat([readFileSync(kit.initramfs), scriptInitramfs('echo bench done')]),
      },
      onOutput: (s) => {
        pending += s;
        const lines = pending.split('\n');
        pending = lines.pop()!;
        for (const l of lines) if (l.startsWith('bench: ')) o.log(`[arm64 L1] ${l.slice(7).trim()}`);
      },
    },
  );
  const f = arm64BootFigures(res.console);
  const why = f
    ? undefined
    : `no figures from the arm64 L1 (exit ${res.exitCode ?? 'none'}): ${res.console.slice(-600)}`;
  return [
    pairedRow(
      {
        id: 'boot.init.arm64',
        bench: 'boot-arm64',
        label: 'arm64: process spawn to the init marker line on the serial console',
        unit: 'ms',
        better: 'lower',
        where: 'sandbox',
        peer: ARM64_BOOT.peer,
        notes:
          `arm64 L1 (QEMU TCG, EL2) nested KVM; ${ARM64_BOOT.memoryMiB} MiB, ${ARM64_BOOT.vcpus} vCPU, Debian arm64 ` +
          'cloud kernel + kit initramfs; console ours 16550 (ttyS0), QEMU PL011 (ttyAMA0)',
      },
      f?.ours ?? [],
      f?.qemu ?? [],
      {
        ours: why ? [why] : f!.problems.filter((p) => p.startsWith('ours')),
        peer: why ? [why] : f!.problems.filter((p) => p.startsWith('qemu')),
      },
    ),
  ];
}
