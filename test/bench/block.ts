import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectLayout } from '../../hosts/sandbox/sandbox.js';
import { benchInitramfs } from './guest/initramfs.js';
import { whyFailed } from './guest/launch.js';
import { exitSummary, runGuest } from './guest/run-guest.js';
import { oursArgv, peerName, qemuBenchArgv, type GuestSpec, type Transport } from './guest/vmms.js';
import { pairedRow } from './rows.js';
import type { GuestBenchOptions, Row, Where } from './types.js';

const DISK_MIB = 128;
const SPAN_MIB = 64;
const SECS = 2;
/** The figures guestbench prints for one disk (seqwrite, seqread, randread 4 KiB), with their row ids and labels. */
export const FIGURES = [
  { key: 'seqwrite_MBps', id: 'seqwrite', label: 'sequential write, 1 MiB O_DIRECT + fdatasync', unit: 'MB/s' },
  { key: 'seqread_MBps', id: 'seqread', label: 'sequential read, 1 MiB O_DIRECT', unit: 'MB/s' },
  { key: 'randread_iops', id: 'randread4k', label: '4 KiB random read, O_DIRECT, queue depth 1', unit: 'IOPS' },
] as const;

/** A scratch folder on tmpfs when there is one (inside L1 the project disk is emulated and slow). */
export function scratch(name = 'block'): string {
  const base = process.env.TSVMM_IN_SANDBOX === '1' && existsSync('/run') ? '/run' : tmpdir();
  return mkdtempSync(join(base, `tsvmm-bench-${name}-`));
}

/** The guest script lines measuring `path` (a disk or a file of at least 64 MiB), each figure's key prefixed. */
export function diskScript(path: string, prefix = ''): string {
  const tag = prefix ? ` | sed 's/^BENCH /BENCH ${prefix}/'` : '';
  return (['seqwrite', 'seqread', 'randread'] as const)
    .map((op) => `/bin/guestbench ${op} ${path} ${SPAN_MIB} ${SECS}${tag}`)
    .join('\n');
}

/** A fresh DISK_MIB image (raw: sparse file; qcow2: qemu-img create). */
export function makeImage(path: string, format: 'raw' | 'qcow2'): void {
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

/**
 * The rows of one disk's figures (FIGURES) from both sides' per-repeat guestbench values (keys prefixed with
 * `prefix`): `<bench>.<format>.<figure>`, paired ratios.
 */
export function blockRows(
  bench: string,
  transport: Transport,
  format: 'raw' | 'qcow2',
  where: Where,
  dir: string,
  ours: readonly (Record<string, number> | undefined)[],
  peer: readonly (Record<string, number> | undefined)[],
  problems: { ours: string[]; peer: string[] },
): Row[] {
  return FIGURES.map((f) =>
    pairedRow(
      {
        id: `${bench}.${format}.${f.id}`,
        bench,
        label: `Guest ${f.label}, ${format} image over virtio-${transport}`,
        unit: f.unit,
        better: 'higher',
        where,
        peer: `${peerName(transport, 'virtio-blk-%')}, ${format}, cache=writeback`,
        notes: `${DISK_MIB} MiB image on ${dir.startsWith('/run') ? 'tmpfs' : 'the host filesystem'}, fresh per VM`,
      },
      ours.map((x) => x?.[f.key]),
      peer.map((x) => x?.[f.key]),
      problems,
    ),
  );
}

/** True when plugins/<name> is in this tree. */
export const pluginPresent = (name: string) =>
  existsSync(join(projectLayout().root, 'plugins', name, 'vmm-plugin.json'));

/** Which block rows: the bench name (row ids start with it), the virtio transport and the image formats. */
export interface BlockVariant {
  bench: string;
  transport: Transport;
  formats: readonly ('raw' | 'qcow2')[];
}
/** `block`: micro + virtio-mmio vs QEMU microvm, raw and qcow2. */
export const BLOCK_MMIO: BlockVariant = { bench: 'block', transport: 'mmio', formats: ['raw', 'qcow2'] };

/**
 * Block I/O inside the guest on /dev/vda: guestbench (static C) does sequential write, sequential
 * read (1 MiB, O_DIRECT, up to 64 MiB or 2 s) and 4 KiB random reads over the written 64 MiB for 2 s.
 * A fresh 128 MiB image per VM; ours = micro or cloud + virtio-blk (+ plugins/qcow), peer = QEMU microvm
 * virtio-blk-device or q35 virtio-blk-pci (cache=writeback, like ours without O_DIRECT).
 */
export async function blockBench(o: GuestBenchOptions, v: BlockVariant = BLOCK_MMIO): Promise<Row[]> {
  const dir = scratch();
  const rows: Row[] = [];
  try {
    const initramfs = benchInitramfs(o.kit, dir, 'block', diskScript('/dev/vda'));
    for (const format of v.formats) {
      const ours: Record<string, number>[] = [],
        peer: Record<string, number>[] = [];
      const problems = { ours: [] as string[], peer: [] as string[] };
      const oursAvailable = pluginPresent('virtio-blk') && (format === 'raw' || pluginPresent('qcow'));
      for (let i = 0; i < o.repeats; i++) {
        for (const which of ['qemu', 'ours'] as const) {
          if (which === 'ours' && !oursAvailable) continue;
          const img = join(dir, `${which}-${i}.${format}`);
          makeImage(img, format);
          const g: GuestSpec = {
            kit: o.kit,
            initramfs,
            memoryMiB: 256,
            vcpus: 1,
            dir,
            disk: { path: img, format },
            transport: v.transport,
          };
          const argv =
            which === 'ours' ? oursArgv(g, `${v.bench}-${format}-${i}`) : { argv: qemuBenchArgv(g), env: process.env };
          const r = await runGuest(argv.argv, { env: argv.env, timeoutMs: 420_000 });
          if (which === 'ours') o.log(`${v.bench} ${format} ours: ${exitSummary(r.l.stderr) ?? 'no exit statistics'}`);
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
          `${v.bench} ${format} ${o.where} repeat ${i + 1}/${o.repeats}: qemu ${JSON.stringify(peer[i] ?? 'n/a')}, ours ${JSON.stringify(ours[i] ?? 'n/a')}`,
        );
      }
      if (!oursAvailable)
        problems.ours.unshift(
          `our ${format === 'qcow2' ? 'virtio-blk/qcow' : 'virtio-blk'} plugin is not in this tree`,
        );
      rows.push(...blockRows(v.bench, v.transport, format, o.where, dir, ours, peer, problems));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}
