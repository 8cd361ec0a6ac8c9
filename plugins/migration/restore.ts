import * as path from 'node:path';
import type { DependencyContainer } from 'tsyringe';
import type { GuestMemory, GuestMemoryFactory, GuestMemoryLayout } from '../../core/memory/guest-memory.js';
import { createPrivateFileMemory } from '../../core/memory/backends/private-file-mmap.js';
import { StateError } from '../../core/state/errors.js';
import { checkVmState } from '../../core/state/vm-state.js';
import { Tokens } from '../../core/tokens.js';
import { assembleVm, type AssembleOptions, type AssembledVm } from '../../core/vmm/assemble.js';
import type { VmPlan } from '../../core/vmm/plan.js';
import { MigrationError } from './errors.js';
import type { MemoryImage } from './format.js';
import type { PluginVersion } from './vm-parts.js';
import { openSnapshot, type OpenSnapshotOptions, type OpenedSnapshot } from './snapshot-dir.js';
import { checkPluginVersions } from './versions.js';

/** How restoreVm opens and assembles: the snapshot checks plus the assembly options (logger, parent, ...). */
export interface RestoreOptions extends OpenSnapshotOptions, Omit<AssembleOptions, 'kernel' | 'plan'> {}

/** The guest memory a restore maps: the regions a layout asks for must be the snapshot's, in its file. */
class SnapshotMemoryFactory implements GuestMemoryFactory {
  constructor(
    private readonly image: Pick<MemoryImage, 'regions'>,
    private readonly file: string,
    private readonly map: (layout: GuestMemoryLayout) => GuestMemory,
  ) {}

  create(layout: GuestMemoryLayout): GuestMemory {
    const memory = this.map({ ...layout, path: this.file });
    const saved = this.image.regions;
    let offset = 0;
    const same =
      memory.regions.length === saved.length &&
      memory.regions.every((r, i) => {
        const s = saved[i]!;
        const ok = s.start === Number(r.range.start.value) && s.size === r.bytes.length && s.fileOffset === offset;
        offset += r.bytes.length;
        return ok;
      });
    if (!same) {
      memory.close();
      throw new MigrationError(
        'Mismatch',
        `the snapshot's memory regions (${saved.map((r) => `0x${r.start.toString(16)}+${r.size}`).join(', ')}) ` +
          "are not this VM's (machine.memory)",
      );
    }
    return memory;
  }
}

/** The steps a restore adds to assembling a VM; each acts once (a later reset assembles a fresh VM). */
export interface RestoreHooks {
  /** For AssembleOptions.kernel: checks the plugins and maps the snapshot's memory instead of fresh RAM. */
  kernel(kernel: DependencyContainer, plan: VmPlan): void;
  /** Creates the vCPUs (no state loaded yet): a migration's destination does it before the source stops. */
  prepare(vm: AssembledVm): void;
  /**
   * Prepares (unless done) and validates every saved state against the VM without loading any (MigrationError
   * 'Mismatch' when one does not fit): a migration's destination checks them before it says Ready.
   */
  check(vm: AssembledVm): void;
  /** Before the machine starts: prepares (unless done) and loads every saved state (all validated first). */
  load(vm: AssembledVm): void;
}

/** A StateError as the one-line MigrationError a restore reports; anything else as it is. */
function mismatch(err: unknown): unknown {
  if (!(err instanceof StateError)) return err;
  return new MigrationError('Mismatch', `the saved state does not fit this VM: ${err.message}`, {}, { cause: err });
}

/**
 * The restore steps for a snapshot whose guest memory is `memoryFile` (mapped by `map`: privately from a
 * snapshot, shared from a received migration's file); `states` gives the saved states when they load. Errors are
 * MigrationErrors: 'Mismatch' when the state does not fit the VM built from the config, 'Version' for a newer
 * plugin.
 */
export function restoreHooks(
  body: { plugins: readonly PluginVersion[]; memory: Pick<MemoryImage, 'regions'> },
  states: () => unknown,
  memoryFile: string,
  map: (layout: GuestMemoryLayout) => GuestMemory = createPrivateFileMemory,
): RestoreHooks {
  let mapped = false;
  let prepared = false;
  let loaded = false;
  /** The states check() validated last (the very object states() gave) and what loads them. */
  let checked: { states: unknown; load: () => void } | undefined;
  const hooks: RestoreHooks = {
    kernel(kernel, plan) {
      if (mapped) return;
      mapped = true;
      checkPluginVersions(body.plugins, plan);
      kernel.register(Tokens.GuestMemoryFactory.token, {
        useValue: new SnapshotMemoryFactory(body.memory, memoryFile, map),
      });
    },
    prepare(vm) {
      if (prepared) return;
      prepared = true;
      const machine = vm.machine;
      if (!machine?.prepareRestore) throw new MigrationError('State', 'this machine cannot be restored into');
      machine.prepareRestore();
    },
    check(vm) {
      hooks.prepare(vm);
      const saved = states();
      if (checked?.states === saved) return;
      try {
        checked = { states: saved, load: checkVmState(vm.container.resolve(Tokens.StateRegistry.token), saved) };
      } catch (err) {
        throw mismatch(err);
      }
    },
    load(vm) {
      if (loaded) return;
      loaded = true;
      hooks.check(vm);
      try {
        checked!.load();
      } catch (err) {
        throw mismatch(err);
      }
    },
  };
  return hooks;
}

/** The config input a snapshot's VM is planned from (its relative paths start where the original's did). */
export function snapshotConfigInput(s: OpenedSnapshot): { config: unknown; baseDir: string; file: string } {
  return { config: s.body.config, baseDir: s.body.baseDir, file: path.join(s.dir, 'manifest.json#config') };
}

/**
 * Restores the snapshot in `dir` into a new VM of this process: checks the whole snapshot (manifest checksum,
 * format and plugin versions, state and memory checksums), assembles the VM its config describes with guest
 * memory mapped copy-on-write from the snapshot's memory file (nothing copied up front), creates the vCPUs and
 * loads every saved state (all validated before any is loaded). The VM is returned paused at the saved instant:
 * `vm.machine.start()` continues the guest. On any failure nothing is left behind (one-line MigrationError).
 */
export async function restoreVm(dir: string, opts: RestoreOptions = {}): Promise<AssembledVm> {
  const snap = openSnapshot(dir, opts);
  const hooks = restoreHooks(snap.body, () => snap.states, snap.memoryPath);
  const vm = await assembleVm(snapshotConfigInput(snap), { ...opts, kernel: hooks.kernel });
  try {
    hooks.load(vm);
  } catch (err) {
    await vm.dispose();
    throw err;
  }
  return vm;
}
