import { chmodSync, mkdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Markers } from '../../hosts/guestkit/markers.js';
import { startVirtiofsd, type VirtiofsShare } from '../../hosts/sandbox/virtiofs.js';
import { startQsd } from '../harness/qsd.js';
import { diskScript, FIGURES, makeImage, scratch } from './block.js';
import { benchInitramfs } from './guest/initramfs.js';
import { cpuMsOf, treeCpuMsOf, whyFailed } from './guest/launch.js';
import { exitSummary, runGuest } from './guest/run-guest.js';
import { oursArgv, qemuBenchArgv, type GuestSpec, type Transport } from './guest/vmms.js';
import { pairedRow } from './rows.js';
import type { GuestBenchOptions, Row } from './types.js';

const TRANSPORT: Transport = 'pci';
const TAG = 'benchfs';
const FS_FILE = 'bench.dat';
const SPAN_MIB = 64;

/**
 * CPU ms the VMM (all threads; its main thread apart), the VMM's main thread and the daemons used in each phase of
 * the guest script: from the init marker to the first figure, then from figure to figure (`BENCH <key> <value>`
 * lines whose key is a FIGURES key). Where the data path's time goes: a phase's CPU against its wall time.
 */
class PhaseCpu {
  private last: number[] | undefined;
  readonly phases: string[] = [];

  constructor(private readonly pids: () => { vmm?: number; qsd?: number; fs?: number }) {}

  private sample(): number[] {
    const p = this.pids();
    return [cpuMsOf(p.vmm), cpuMsOf(p.vmm, p.vmm), cpuMsOf(p.qsd), treeCpuMsOf(p.fs)].map((v) => v ?? NaN);
  }

  onLine(line: string): void {
    if (line.startsWith(Markers.INIT_OK)) this.last = this.sample();
    const m = /^BENCH (\S+) /.exec(line);
    if (!m || !this.last || !FIGURES.some((f) => m[1].endsWith(f.key))) return;
    const now = this.sample();
    const d = now.map((v, i) => v - this.last![i]);
    this.last = now;
    this.phases.push(`${m[1].replace(/_(MBps|iops)$/, '')} vmm ${d[0]} (main ${d[1]}) qsd ${d[2]} virtiofsd ${d[3]}`);
  }
}

const kill = (pid: number) => {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone */
  }
};

/** One VM of either side with fresh back ends: both daemons started for it and stopped after it. */
async function vhostOnce(
  which: 'ours' | 'qemu',
  o: GuestBenchOptions,
  dir: string,
  initramfs: string,
  i: number,
): Promise<{ values?: Record<string, number>; problem?: string }> {
  const run = join(dir, `${which}-${i}`);
  mkdirSync(run);
  chmodSync(run, 0o755);
  const image = join(run, 'disk.raw');
  makeImage(image, 'raw');
  const shared = join(run, 'shared');
  mkdirSync(shared);
  writeFileSync(join(shared, FS_FILE), '');
  truncateSync(join(shared, FS_FILE), SPAN_MIB << 20);
  let qsd = 0;
  let fs: VirtiofsShare | undefined;
  try {
    const blkSocket = join(run, 'blk.sock');
    qsd = startQsd(run, image, blkSocket);
    fs = await startVirtiofsd(shared, run, i);
    const g: GuestSpec = {
      kit: o.kit,
      initramfs,
      memoryMiB: 256,
      vcpus: 1,
      dir: run,
      transport: TRANSPORT,
      vhost: { blkSocket, fs: { socket: join(run, `virtiofs-${i}.sock`), tag: TAG } },
    };
    const argv = which === 'ours' ? oursArgv(g, `vhost-${i}`) : { argv: qemuBenchArgv(g), env: process.env };
    let vmm: number | undefined;
    const cpu = new PhaseCpu(() => ({ vmm, qsd, fs: fs?.pid }));
    const r = await runGuest(argv.argv, {
      env: argv.env,
      timeoutMs: 300_000,
      onLine: (line, _ms, l) => {
        vmm = l.child.pid;
        cpu.onLine(line);
      },
    });
    if (which === 'ours') o.log(`vhost ours VM ${i}: ${exitSummary(r.l.stderr) ?? 'no exit statistics logged'}`);
    o.log(`vhost ${which} VM ${i} CPU ms per phase: ${cpu.phases.join('; ')}`);
    const v = r.l.values;
    const complete = FIGURES.every((f) => v[`blk_${f.key}`] !== undefined && v[`fs_${f.key}`] !== undefined);
    if (complete) return { values: v };
    return {
      problem: `${r.problem ?? 'figures missing'}: ${whyFailed(r.l).slice(0, 300)} (virtiofsd: ${fs.log().trim().split('\n').slice(-2).join(' / ').slice(0, 200)})`,
    };
  } catch (e) {
    return { problem: (e as Error).message.split('\n')[0] };
  } finally {
    fs?.stop();
    if (qsd) kill(qsd);
    rmSync(run, { recursive: true, force: true });
  }
}

/**
 * `vhost`: the guest's I/O through vhost-user back ends in other processes, ours against QEMU with the same back
 * ends, fresh for each VM: a vhost-user-blk disk served by qemu-storage-daemon (128 MiB raw file) and a virtio-fs
 * share served by virtiofsd (a 64 MiB file in it); guestbench as in `block` on /dev/vda and on the shared file
 * (O_DIRECT). Ours = cloud (virtio-pci) + vhost-user-blk + virtio-fs, guest RAM in a memfd; peer = QEMU q35
 * vhost-user-blk-pci + vhost-user-fs-pci, memory-backend-memfd share=on. One VM per side per repeat.
 */
export async function vhostBench(o: GuestBenchOptions): Promise<Row[]> {
  const dir = scratch('vhost');
  chmodSync(dir, 0o755);
  const ours: Record<string, number>[] = [];
  const peer: Record<string, number>[] = [];
  const problems = { ours: [] as string[], peer: [] as string[] };
  try {
    const script = [
      diskScript('/dev/vda', 'blk_'),
      'mkdir -p /mnt/fs',
      `mount -t virtiofs ${TAG} /mnt/fs || echo "guestbench: mount -t virtiofs ${TAG} failed"`,
      diskScript(`/mnt/fs/${FS_FILE}`, 'fs_'),
      'umount /mnt/fs',
    ].join('\n');
    const initramfs = benchInitramfs(o.kit, dir, 'vhost', script);
    for (let i = 0; i < o.repeats; i++) {
      for (const which of ['qemu', 'ours'] as const) {
        const r = await vhostOnce(which, o, dir, initramfs, 2 * i + (which === 'ours' ? 1 : 0));
        if (r.values) (which === 'ours' ? ours : peer)[i] = r.values;
        else (which === 'ours' ? problems.ours : problems.peer).push(r.problem ?? 'no figures');
      }
      o.log(
        `vhost ${o.where} repeat ${i + 1}/${o.repeats}: qemu ${JSON.stringify(peer[i] ?? problems.peer.at(-1))}, ` +
          `ours ${JSON.stringify(ours[i] ?? problems.ours.at(-1))}`,
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const rows: Row[] = [];
  for (const [dev, what, peerDev] of [
    ['blk', 'vhost-user-blk disk (qemu-storage-daemon, raw file)', 'vhost-user-blk-pci'],
    ['fs', 'virtio-fs file (virtiofsd, cache=auto)', 'vhost-user-fs-pci'],
  ] as const) {
    for (const f of FIGURES) {
      const key = `${dev}_${f.key}`;
      rows.push(
        pairedRow(
          {
            id: `vhost.${dev}.${f.id}`,
            bench: 'vhost',
            label: `Guest ${f.label}, ${what}, virtio-pci`,
            unit: f.unit,
            better: 'higher',
            where: o.where,
            peer: `QEMU -M q35 ${peerDev}, memory-backend-memfd share=on, same daemon`,
            notes:
              'fresh daemons per VM; the cloud host (virtio-pci) with machine.memoryBackend memfd; ' +
              (dev === 'blk'
                ? 'shadowRings auto (the default: qemu-storage-daemon 7.2 lacks INFLIGHT_SHMFD, so every kick and completion passes through our main thread for a lossless restart; QEMU gives the daemon the guest rings)'
                : 'shadowRings off (the default: kicks and completions go straight between guest and virtiofsd, as under QEMU)'),
          },
          ours.map((v) => v?.[key]),
          peer.map((v) => v?.[key]),
          problems,
        ),
      );
    }
  }
  return rows;
}
