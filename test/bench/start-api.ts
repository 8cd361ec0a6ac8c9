import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { apiReadyMs } from './guest/api-ready.js';
import { benchInitramfs } from './guest/initramfs.js';
import { qemuReadyMs } from './guest/qemu-ready.js';
import type { GuestSpec } from './guest/vmms.js';
import { pairedRatios, summarize } from './stats.js';
import type { GuestBenchOptions, Row } from './types.js';

/**
 * `start.api` (issue 16): process spawn to a usable control socket. Ours: `vmm serve --api-socket` to the first
 * vmm.ping answered 200 (no VM yet: vm.create and vm.boot come later). Peer: QEMU started paused (`-S`, machine
 * built, kernel loaded) to its QMP greeting. Per repeat the peer runs, then ours; ratios are paired per repeat.
 */
export async function startApiBench(o: GuestBenchOptions): Promise<Row[]> {
  const dir = mkdtempSync(join(tmpdir(), 'tsvmm-bench-start-api-'));
  const ours: number[] = [];
  const peer: number[] = [];
  const problems: string[] = [];
  try {
    const g: GuestSpec = {
      kit: o.kit,
      initramfs: benchInitramfs(o.kit, dir, 'start-api', 'true'),
      memoryMiB: 256,
      vcpus: 1,
      dir,
    };
    for (let i = 0; i < o.repeats; i++) {
      const q = await qemuReadyMs(g, `qmp-${i}`).catch((e: Error) => void problems.push(`peer: ${e.message}`));
      const a = await apiReadyMs(dir, `api-${i}`).catch((e: Error) => void problems.push(`ours: ${e.message}`));
      if (q !== undefined && a !== undefined) {
        ours.push(a);
        peer.push(q);
      }
      o.log(
        `start-api ${o.where} repeat ${i + 1}/${o.repeats}: qemu QMP ${q?.toFixed(0)} ms, vmm.ping ${a?.toFixed(0)} ms`,
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const row: Row = {
    id: 'start.api',
    bench: 'start-api',
    label:
      'Process start to a usable control socket: ours = spawn of `vmm serve` to the first answered vmm.ping; ' +
      'QEMU = spawn with -S to the QMP greeting',
    unit: 'ms',
    better: 'lower',
    where: o.where,
    peer: 'QEMU -M microvm -accel kvm -S -qmp unix:..., 256 MiB, 1 vCPU, the same PVH vmlinux/initramfs',
    notes:
      'ours has no VM yet (vm.create/vm.boot come later), QEMU has built its machine; ' +
      "Firecracker's published anchor: 12 ms on metal",
  };
  if (ours.length === 0) return [{ ...row, na: `n/a: ${problems[0] ?? 'no figure'}` }];
  return [{ ...row, ours: summarize(ours), peerSummary: summarize(peer), ratio: summarize(pairedRatios(ours, peer)) }];
}
