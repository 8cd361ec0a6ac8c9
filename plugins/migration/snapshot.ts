import * as fs from 'node:fs';
import * as path from 'node:path';
import { saveVmState } from '../../core/state/vm-state.js';
import type { AssembledVm } from '../../core/vmm/assemble.js';
import { MigrationError } from './errors.js';
import {
  manifestText,
  sha256,
  SNAPSHOT_FILES,
  SNAPSHOT_FORMAT,
  SNAPSHOT_FORMAT_VERSION,
  type ManifestBody,
} from './format.js';
import { writeMemoryImage } from './memory-image.js';
import { quiesce } from './pause.js';
import { savablePartsOf, type VmParts } from './vm-parts.js';

/** What snapshotVm wrote, and how long the VM stood still for it. */
export interface SnapshotResult {
  dir: string;
  /** Guest RAM in bytes, and how many of them were non-zero (written to the memory file). */
  memoryBytes: number;
  writtenBytes: number;
  /** How many saved states (vm, vCPUs, devices, machine). */
  states: number;
  /** From the pause request until the VM ran again (or until the files were written, when it stays paused). */
  pausedMs: number;
}

/** How snapshotVm leaves the VM: running again (default) or paused. */
export interface SnapshotOptions {
  /** Leave the VM paused afterwards (e.g. to stop it, or to take several snapshots of one instant). */
  leavePaused?: boolean;
}

/** Makes `dir` (it must not exist, or be empty): a snapshot never mixes with other files. */
function prepareDir(dir: string): void {
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (err) {
    throw new MigrationError('Io', `cannot create snapshot directory ${dir}: ${(err as Error).message}`);
  }
  if (fs.readdirSync(dir).length > 0)
    throw new MigrationError('Io', `snapshot directory ${dir} is not empty: give a new or empty directory`);
}

/**
 * Writes the (paused, quiet) VM into `dir`, synchronously from the first state read to the last byte of memory,
 * so nothing in the process can change the guest in between: state.json, memory.bin (sparse), then manifest.json
 * (written last, through a rename: a directory without it is not a snapshot). On failure the files are removed.
 */
export function writeSnapshot(p: VmParts, dir: string): Omit<SnapshotResult, 'pausedMs'> {
  const files = Object.values(SNAPSHOT_FILES).map((f) => path.join(dir, f));
  try {
    const stateText = JSON.stringify(saveVmState(p.states));
    const states = (JSON.parse(stateText) as unknown[]).length;
    fs.writeFileSync(files[1]!, stateText);
    const fd = fs.openSync(files[2]!, 'wx', 0o600);
    let memory;
    try {
      memory = writeMemoryImage(p.memory, fd);
    } finally {
      fs.closeSync(fd);
    }
    const body: ManifestBody = {
      format: SNAPSHOT_FORMAT,
      version: SNAPSHOT_FORMAT_VERSION,
      createdAt: new Date().toISOString(),
      config: p.origin.config,
      baseDir: p.origin.baseDir,
      plugins: p.origin.plugins,
      state: { file: SNAPSHOT_FILES.state, bytes: Buffer.byteLength(stateText), sha256: sha256(stateText) },
      memory,
    };
    const tmp = `${files[0]!}.tmp`;
    fs.writeFileSync(tmp, manifestText(body));
    fs.renameSync(tmp, files[0]!);
    const writtenBytes = memory.extents.reduce((n, [, len]) => n + len, 0);
    return { dir, memoryBytes: memory.bytes, writtenBytes, states };
  } catch (err) {
    for (const f of [...files, `${files[0]!}.tmp`]) fs.rmSync(f, { force: true });
    if (err instanceof MigrationError) throw err;
    throw new MigrationError(
      'Io',
      `cannot write the snapshot to ${dir}: ${(err as Error).message}`,
      {},
      { cause: err },
    );
  }
}

/** snapshotVm over a VM's parts (the plugin's control socket uses it). */
export async function snapshotParts(p: VmParts, dir: string, opts: SnapshotOptions = {}): Promise<SnapshotResult> {
  prepareDir(dir);
  const wasRunning = p.lifecycle.state === 'started';
  const t0 = performance.now();
  await quiesce(p);
  let r: Omit<SnapshotResult, 'pausedMs'>;
  try {
    r = writeSnapshot(p, dir);
  } finally {
    if (wasRunning && !opts.leavePaused) await p.machine.resume();
  }
  return { ...r, pausedMs: Math.round(performance.now() - t0) };
}

/**
 * Snapshots a running (or paused) VM into the directory `dir` (created; must be empty): pauses it (vCPUs out of
 * guest code, device I/O completed), writes every part's state, the guest memory as a sparse file and a manifest
 * (format version, checksums, the VM's config and plugin versions), and resumes it unless `leavePaused`.
 * `vmm restore DIR` (restoreVm) continues the guest from there in a new process.
 */
export async function snapshotVm(vm: AssembledVm, dir: string, opts: SnapshotOptions = {}): Promise<SnapshotResult> {
  return snapshotParts(savablePartsOf(vm, 'snapshot'), dir, opts);
}
