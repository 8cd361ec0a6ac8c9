import type { AssembledVm } from '../../core/vmm/assemble.js';
import { MigrationError } from './errors.js';

/** How sendMigration moves a VM: downtime budget, progress and cancellation. */
export interface SendOptions {
  /** Longest the guest may stand still for the last copy (ms; default 300). */
  downtimeMs?: number;
  /** Called after each round with what was sent and what is still dirty. */
  onProgress?: (p: { round: number; sentBytes: number; dirtyBytes: number }) => void;
  /** Aborting it cancels the migration; the source keeps running. */
  signal?: AbortSignal;
}

/** What a finished migration took: rounds, bytes, the guest's downtime and the whole time. */
export interface SendResult {
  rounds: number;
  sentBytes: number;
  downtimeMs: number;
  totalMs: number;
}

/** How receiveMigration listens and builds the VM. */
export interface ReceiveOptions {
  /** Aborting it stops listening (or receiving); nothing is left behind. */
  signal?: AbortSignal;
}

/**
 * Live-migrates a running VM to `url` (`tcp:host:port` or `unix:path`), where `receiveMigration` listens:
 * pre-copy rounds over KVM's dirty log, then a short stop-and-copy. Not implemented yet: refuses.
 */
export async function sendMigration(vm: AssembledVm, url: string, opts: SendOptions = {}): Promise<SendResult> {
  void vm;
  void opts;
  throw new MigrationError('Usage', `live migration to ${url} is not implemented yet`);
}

/**
 * Listens on `url` for one incoming migration and returns the VM built from it, paused at the instant the source
 * stopped (start it with `vm.machine.start()`). Not implemented yet: refuses.
 */
export async function receiveMigration(url: string, opts: ReceiveOptions = {}): Promise<AssembledVm> {
  void opts;
  throw new MigrationError('Usage', `receiving a migration on ${url} is not implemented yet`);
}
