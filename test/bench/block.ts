import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectLayout } from '../../hosts/sandbox/sandbox.js';
import { benchInitramfs } from './guest/initramfs.js';
import { whyFailed } from './guest/launch.js';
import { runGuest } from './guest/run-guest.js';
import { oursArgv, qemuBenchArgv, type GuestSpec } from './guest/vmms.js';
import { pairedRatios, summarize } from './stats.js';
import type { GuestBenchOptions, Row } from './types.js';

const DISK_MIB = 128;
const SPAN_MIB = 64;
const SECS = 2;
const FIGURES = [
  { key: 'seqwrite_MBps', id: 'seqwrite', label: 'sequential write, 1 MiB O_DIRECT + fdatasync', unit: 'MB/s' },
  { key: 'seqread_MBps', id: 'seqread', label: 'sequential read, 1 MiB O_DIRECT', unit: 'MB/s' },
  { key: 'randread_iops', id: 'randread4k', label: '4 KiB random read, O_DIRECT, queue depth 1', unit: 'IOPS' },
] as const;

/** A scratch folder on tmpfs when there is one (inside L1 the project disk is emulated and slow). */
function scratch(): string {
  const base = process.env.TSVMM_IN_SANDBOX === '1' && existsSync('/run') ? '/run' : tmpdir();
  return mkdtempSync(join(base, 'tsvmm-bench-block-'));
}

function makeImage(path: string, format: 'raw' | 'qcow2'): void {
  if (format === 'raw') {
    writeFileSync(path, '');
    spawnSync('truncate', ['-s', `${DISK_MIB}M`, path]);
    return;
  }
  const r = spawnSync('qemu-img', ['create', '-q', '-f', 'qcow2', path, `${DISK_MIB}M`], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (r.status !== 0) throw new Error(`qemu-img create failed: ${(r.stderr || String(r.error)).trim()}`);
}

const pluginPresent = (name: string) => existsSync(join(projectLayout().root, 'plugins', name, 'vmm-plugin.json'));

/**
 * Block I/O inside the guest on /dev/vda: guestbench (static C) does sequential write, sequential
 * read (1 MiB, O_DIRECT, up to 64 MiB or 2 s) and 4 KiB random reads over the written 64 MiB for 2 s.
 * Raw and qcow2 images, a fresh 128 MiB image per VM; ours = micro + virtio-blk (+ plugins/qcow),
 * peer = QEMU microvm virtio-blk-device (cache=writeback, like ours without O_DIRECT).
 */
export async function blockBench(o: GuestBenchOptions): Promise<Row[]> {
  const dir = scratch();
  const rows: Row[] = [];
  try {
    const script = [
      `/bin/guestbench seqwrite /dev/vda ${SPAN_MIB} ${SECS}`,
      `/bin/guestbench seqread /dev/vda ${SPAN_MIB} ${SECS}`,
      `/bin/guestbench randread /dev/vda ${SPAN_MIB} ${SECS}`,
    ].join('\n');
    const initramfs = benchInitramfs(o.kit, dir, 'block', script);
    for (const format of ['raw', 'qcow2'] as const) {
      const ours: Record<string, number>[] = [],
        peer: Record<string, number>[] = [];
      const problems = { ours: [] as string[], peer: [] as string[] };
      const oursAvailable = pluginPresent('virtio-blk') && (format === 'raw' || pluginPresent('qcow'));
      for (let i = 0; i < o.repeats; i++) {
        for (const which of ['qemu', 'ours'] as const) {
          if (which === 'ours' && !oursAvailable) continue;
          const img = join(dir, `${which}-${i}.${format}`);
          makeImage(img, format);
          const g: GuestSpec = { kit: o.kit, initramfs, memoryMiB: 256, vcpus: 1, dir, disk: { path: img, format } };
          const argv =
            which === 'ours' ? oursArgv(g, `block-${format}-${i}`) : { argv: qemuBenchArgv(g), env: process.env };
          const r = await runGuest(argv.argv, { env: argv.env, timeoutMs: 420_000 });
          const got = r.l.values;
          const complete = FIGURES.every((f) => got[f.key] !== undefined);
          if (complete) (which === 'ours' ? ours : peer)[i] = got;
          else
            (which === 'ours' ? problems.ours : problems.peer).push(
              `${r.problem ?? 'figures missing'}: ${whyFailed(r.l).slice(0, 400)}`,
            );
          rmSync(img, { force: true });
        }
        o.log(
          `block ${format} ${o.where} repeat ${i + 1}/${o.repeats}: qemu ${JSON.stringify(peer[i] ?? 'n/a')}, ours ${JSON.stringify(ours[i] ?? 'n/a')}`,
        );
      }
      for (const f of FIGURES) {
        const a: number[] = [],
          b: number[] = [];
        for (let i = 0; i < o.repeats; i++)
          if (ours[i] && peer[i]) {
            a.push(ours[i][f.key]);
            b.push(peer[i][f.key]);
          }
        const row: Row = {
          id: `block.${format}.${f.id}`,
          bench: 'block',
          label: `Guest ${f.label}, ${format} image`,
          unit: f.unit,
          better: 'higher',
          where: o.where,
          peer: `QEMU microvm virtio-blk-device, ${format}, cache=writeback`,
          notes: `${DISK_MIB} MiB image on ${dir.startsWith('/run') ? 'tmpfs' : 'the host filesystem'}, fresh per VM`,
        };
        const peerOnly = peer.filter(Boolean).map((v) => v[f.key]);
        if (a.length === 0) {
          const why = !oursAvailable
            ? `our ${format === 'qcow2' ? 'virtio-blk/qcow' : 'virtio-blk'} plugin is not in this tree yet`
            : problems.ours.length
              ? `ours: ${problems.ours[0]}`
              : `peer: ${problems.peer[0] ?? 'no figure'}`;
          rows.push({ ...row, peerSummary: summarize(peerOnly), na: `n/a: ${why}` });
        } else {
          rows.push({ ...row, ours: summarize(a), peerSummary: summarize(b), ratio: summarize(pairedRatios(a, b)) });
        }
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}
