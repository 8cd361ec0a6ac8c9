import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SandboxVariant } from '../../hosts/sandbox/variant.js';
import { iommuNvmeVariant, writeNvmeBacking } from '../../hosts/sandbox/vfio-variant.js';
import { vfioBoundFunctions } from '../../plugins/vfio/proof.js';
import { scratch } from './block.js';
import { benchInitramfs } from './guest/initramfs.js';
import { whyFailed } from './guest/launch.js';
import { exitSummary, runGuest } from './guest/run-guest.js';
import { oursArgv, qemuBenchArgv, type GuestSpec } from './guest/vmms.js';
import { pairedRow } from './rows.js';
import type { GuestBenchOptions, Row } from './types.js';

const NVME_CLASS = '0x010802';
const SPAN_MIB = 64;
const SECS = 2;
const PEER = 'QEMU -M q35 -accel kvm, -device vfio-pci,host=<the same NVMe>,rombar=0, same kernel/initramfs/cmdline';

/** The two figures, as guestbench prints them on the passed-through namespace. */
const FIGURES = [
  { key: 'seqread_MBps', id: 'seqread', label: 'sequential read, 1 MiB O_DIRECT', unit: 'MB/s' },
  { key: 'randread_iops', id: 'randread4k', label: '4 KiB random read, O_DIRECT, queue depth 1', unit: 'IOPS' },
] as const;

/** The guest script: wait (bounded) for the nvme driver's disk, then read it (guestbench, as the block rows do). */
export function vfioScript(): string {
  return [
    'i=0; while [ ! -b /dev/nvme0n1 ] && [ $i -lt 60 ]; do sleep 1; i=$((i+1)); done',
    `/bin/guestbench seqread /dev/nvme0n1 ${SPAN_MIB} ${SECS}`,
    `/bin/guestbench randread /dev/nvme0n1 ${SPAN_MIB} ${SECS}`,
  ].join('\n');
}

/**
 * The sandbox L1 `vfio` needs (hosts/sandbox/vfio-variant.ts: q35, Intel IOMMU, an emulated NVMe bound to
 * vfio-pci), its namespace a fresh host file in `dir`.
 */
export function vfioBenchSandbox(dir = mkdtempSync(join(tmpdir(), 'tsvmm-bench-vfio-'))): SandboxVariant {
  const backing = join(dir, 'vfio-nvme.raw');
  writeNvmeBacking(backing);
  return iommuNvmeVariant(backing);
}

/**
 * `vfio`: reads on an NVMe controller passed through to the guest. Ours = hosts/cloud.yaml + the vfio plugin,
 * peer = QEMU q35 with its own vfio-pci, the same function, one side after the other per repeat (a function
 * opens in one VMM at a time). Runs where a function of NVMe class is bound to vfio-pci (the sandbox's IOMMU
 * variant, which run.ts boots for this benchmark); elsewhere the rows are n/a. Rows: vfio.nvme.seqread,
 * vfio.nvme.randread4k.
 */
export async function vfioBench(o: GuestBenchOptions): Promise<Row[]> {
  const fn = vfioBoundFunctions().find((f) => f.pciClass === NVME_CLASS);
  const ours: (Record<string, number> | undefined)[] = [];
  const peer: (Record<string, number> | undefined)[] = [];
  const problems = { ours: [] as string[], peer: [] as string[] };
  const dir = scratch('vfio');
  try {
    if (!fn) {
      const why = 'no NVMe controller bound to vfio-pci here (the sandbox IOMMU variant has one)';
      problems.ours.push(why);
      problems.peer.push(why);
    } else {
      const initramfs = benchInitramfs(o.kit, dir, 'vfio', vfioScript());
      const g: GuestSpec = { kit: o.kit, initramfs, memoryMiB: 256, vcpus: 1, dir, transport: 'pci' };
      for (let i = 0; i < o.repeats; i++) {
        for (const which of ['qemu', 'ours'] as const) {
          const argv =
            which === 'ours'
              ? oursArgv({ ...g, vfio: fn.address }, `vfio-${i}`)
              : { argv: qemuBenchArgv({ ...g, vfio: fn.address }), env: process.env };
          const r = await runGuest(argv.argv, { env: argv.env, timeoutMs: 420_000 });
          if (which === 'ours') o.log(`vfio ours: ${exitSummary(r.l.stderr) ?? 'no exit statistics'}`);
          if (FIGURES.every((f) => r.l.values[f.key] !== undefined)) (which === 'ours' ? ours : peer)[i] = r.l.values;
          else
            problems[which === 'ours' ? 'ours' : 'peer'].push(
              `${r.problem ?? 'figures missing'}: ${whyFailed(r.l).slice(0, 400)}`,
            );
        }
        o.log(
          `vfio ${o.where} repeat ${i + 1}/${o.repeats}: qemu ${JSON.stringify(peer[i] ?? 'n/a')}, ` +
            `ours ${JSON.stringify(ours[i] ?? 'n/a')}`,
        );
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return FIGURES.map((f) =>
    pairedRow(
      {
        id: `vfio.nvme.${f.id}`,
        bench: 'vfio',
        label: `Guest ${f.label}, NVMe passed through (VFIO)`,
        unit: f.unit,
        better: 'higher',
        where: o.where,
        peer: PEER,
        notes: `cloud host + vfio plugin, 1 vCPU, 256 MiB; ${fn ? `${fn.address} [${fn.ids}]` : 'no device'}; ${SPAN_MIB} MiB span`,
      },
      ours.map((x) => x?.[f.key]),
      peer.map((x) => x?.[f.key]),
      problems,
    ),
  );
}
