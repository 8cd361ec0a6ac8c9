import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { blockRows, diskScript, FIGURES, makeImage, scratch } from './block.js';
import { bootOnce, side } from './boot.js';
import { benchInitramfs } from './guest/initramfs.js';
import { whyFailed } from './guest/launch.js';
import { exitSummary } from './guest/run-guest.js';
import type { GuestSpec } from './guest/vmms.js';
import { configureTap, netRowBase, netScript, Sink } from './net.js';
import { pairedRow } from './rows.js';
import type { GuestBenchOptions, Row } from './types.js';

const MEM_MIB = 256;
const VCPUS = 1;
const PEER =
  'QEMU -M q35 -accel kvm (SeaBIOS), same PVH vmlinux/initramfs/cmdline, virtio-blk-pci (raw) + virtio-net-pci (tap)';

type Values = Record<string, number>;

/**
 * `boot-cloud`, `block-pci`, `net-pci` from the same boots (one VM per side per repeat, as boot/memory/start share
 * theirs): the cloud host (hosts/cloud.yaml: ACPI, PCI, virtio-pci; at the bench size, 1 vCPU and 256 MiB like
 * boot.init) with a fresh raw disk and a tap NIC, against QEMU `-M q35` with the same kernel, initramfs, command
 * line and virtio-pci devices. The guest prints BENCH-IDLE (memory sampled while it idles 2 s), then runs the block
 * script of `block` on /dev/vda and the net script of `net` (whichever are selected). Rows: boot-cloud.init,
 * boot-cloud.memory, block-pci.raw.*, net-pci.tcp.guest-to-host.
 */
export async function cloudBench(o: GuestBenchOptions): Promise<Row[]> {
  const dir = scratch('cloud');
  const ours = side();
  const qemu = side();
  const tun = existsSync('/dev/net/tun');
  const wantBlock = o.selected.has('block-pci');
  const wantNet = o.selected.has('net-pci') && tun;
  const blk: { ours: (Values | undefined)[]; peer: (Values | undefined)[] } = { ours: [], peer: [] };
  const net: { ours: (number | undefined)[]; peer: (number | undefined)[] } = { ours: [], peer: [] };
  const io = { ours: [] as string[], peer: [] as string[] };
  const sink = new Sink();
  try {
    if (wantNet) await sink.listen();
    const script = ['echo BENCH-IDLE', 'sleep 2', ...(wantBlock ? [diskScript('/dev/vda')] : [])];
    if (wantNet) script.push(netScript());
    const initramfs = benchInitramfs(o.kit, dir, 'cloud', script.join('\n'));
    for (let i = 0; i < o.repeats; i++) {
      for (const which of ['qemu', 'ours'] as const) {
        const w = which === 'ours' ? 'ours' : 'peer';
        const img = join(dir, `${which}-${i}.raw`);
        makeImage(img, 'raw');
        const tap = tun ? `tbcloud${i}${which === 'ours' ? 'o' : 'q'}` : undefined;
        const g: GuestSpec = {
          kit: o.kit,
          initramfs,
          memoryMiB: MEM_MIB,
          vcpus: VCPUS,
          dir,
          transport: 'pci',
          disk: { path: img, format: 'raw' },
          tap,
        };
        const before = sink.results.length;
        let tapOk = true;
        const r = await bootOnce(which, g, which === 'ours' ? ours : qemu, i, async (ended) => {
          if (wantNet && tap) tapOk = await configureTap(tap, ended);
        });
        rmSync(img, { force: true });
        if (which === 'ours')
          o.log(`cloud ours repeat ${i + 1}: ${exitSummary(r.l.stderr) ?? 'no exit statistics logged'}`);
        const why = () => `${r.problem ?? 'figures missing'}: ${whyFailed(r.l).slice(0, 400)}`;
        if (wantBlock) {
          if (FIGURES.every((f) => r.l.values[f.key] !== undefined)) blk[w][i] = r.l.values;
          else io[w].push(why());
        }
        if (wantNet) {
          if (sink.results.length > before && r.finished) net[w][i] = sink.results[sink.results.length - 1];
          else io[w].push(`${tapOk ? '' : 'tap never configured; '}${why()}`);
        }
      }
      o.log(
        `cloud ${o.where} repeat ${i + 1}/${o.repeats}: init qemu ${qemu.initMs[i]?.toFixed(0) ?? 'n/a'} ms, ` +
          `ours ${ours.initMs[i]?.toFixed(0) ?? 'n/a'} ms; overhead MiB qemu ${qemu.memMiB[i]?.toFixed(1) ?? 'n/a'}, ` +
          `ours ${ours.memMiB[i]?.toFixed(1) ?? 'n/a'}; block qemu ${JSON.stringify(blk.peer[i] ?? 'n/a')}, ` +
          `ours ${JSON.stringify(blk.ours[i] ?? 'n/a')}; net MB/s qemu ${net.peer[i]?.toFixed(1) ?? 'n/a'}, ` +
          `ours ${net.ours[i]?.toFixed(1) ?? 'n/a'}`,
      );
    }
  } finally {
    sink.close();
    rmSync(dir, { recursive: true, force: true });
  }
  const boots = { ours: ours.problems, peer: qemu.problems };
  const rows: Row[] = [];
  if (o.selected.has('boot-cloud')) {
    const base = { bench: 'boot-cloud', better: 'lower' as const, where: o.where, peer: PEER };
    rows.push(
      pairedRow(
        {
          ...base,
          id: 'boot-cloud.init',
          label: 'Cloud host: process spawn to the init marker line on the serial console',
          unit: 'ms',
          notes: `${MEM_MIB} MiB, ${VCPUS} vCPU, raw disk${tun ? ' + tap NIC' : ' (no /dev/net/tun: no NIC)'}, cloud cmdline + quiet`,
        },
        ours.initMs,
        qemu.initMs,
        boots,
      ),
      pairedRow(
        {
          ...base,
          id: 'boot-cloud.memory',
          label: 'Cloud host: VMM resident memory above guest RAM, guest idle after boot',
          unit: 'MiB',
          notes: 'as memory.overhead, from the same boots',
        },
        ours.memMiB,
        qemu.memMiB,
        boots,
      ),
    );
  }
  const problems = { ours: [...io.ours, ...ours.problems], peer: [...io.peer, ...qemu.problems] };
  if (wantBlock) rows.push(...blockRows('block-pci', 'pci', 'raw', o.where, dir, blk.ours, blk.peer, problems));
  if (o.selected.has('net-pci')) {
    const base = netRowBase('pci', o.where);
    rows.push(tun ? pairedRow(base, net.ours, net.peer, problems) : { ...base, na: 'n/a: no /dev/net/tun here' });
  }
  return rows;
}
