import type { AssembledVm } from '../../core/vmm/assemble.js';
import { runVm, type RunOptions, type RunResult } from '../../core/vmm/run.js';
import { markStartup } from '../../core/vmm/timings.js';
import { restoreHooks, snapshotConfigInput } from './restore.js';
import { openSnapshot, type OpenSnapshotOptions, type OpenedSnapshot } from './snapshot-dir.js';

/** How runRestored runs: runVm's options (signals, start hooks, a plan of the snapshot's config) and the checks. */
export interface RunRestoredOptions extends OpenSnapshotOptions, Omit<RunOptions, 'kernel'> {}

/**
 * `vmm restore DIR`: restores the snapshot in `from` (a directory, or one openSnapshot checked) and runs the VM
 * like `vmm run` (signals, exit codes) until it stops. A guest reset with machine.onReset: restart boots the config
 * afresh (the snapshot is used once). `beforeStart` runs after the state is loaded (the CLI's system call filter
 * goes in there).
 */
export async function runRestored(from: string | OpenedSnapshot, opts: RunRestoredOptions = {}): Promise<RunResult> {
  const snap = typeof from === 'string' ? openSnapshot(from, opts) : from;
  const hooks = restoreHooks(snap.body, () => snap.states, snap.memoryPath);
  let refused: unknown;
  const verified = snap.memoryVerified?.catch((err: unknown) => {
    refused = err;
    throw err;
  });
  verified?.catch(() => {});
  return runVm(snapshotConfigInput(snap), {
    ...opts,
    kernel: hooks.kernel,
    beforeStart: async (vm) => {
      // the vCPUs made and their threads started (nothing loaded, nothing runs) while the hash may still run
      hooks.prepare(vm);
      // hashed in a worker while the VM was assembled: nothing loads and no vCPU runs on a corrupt file
      await verified;
      if (verified) markStartup('restore: memory verified');
      hooks.load(vm);
      await opts.beforeStart?.(vm);
    },
    onStarted: (vm) => {
      logRunning(vm, 'restored');
      opts.onStarted?.(vm);
    },
  }).catch((err: unknown) => {
    throw refused ?? err; // the snapshot's own one-line error, not the start failure wrapping it
  });
}

/**
 * Logs that a restored or received VM runs (its vCPUs entered the guest), with the ms since this process started:
 * the bench reads the record's `time` (restore to a running vCPU, migration downtime).
 */
export function logRunning(vm: AssembledVm, how: 'restored' | 'received'): void {
  vm.logger.info({ how, sinceProcessStartMs: Math.round(performance.now()) }, 'migration: the guest runs');
}
