import type { ApiExtensions } from './vmm.js';

/** The migration plugin's functions, imported on first use (a VM that never snapshots does not load them). */
const migration = () => import('../../plugins/migration/index.js');

/**
 * What the API gets from other helpers' contracts: C3 (plugins/migration: pause with devices quiet, snapshot,
 * send / receive a migration, restore). C2 (hotplug) joins here when core/vmm/hotplug.ts lands.
 */
export function defaultExtensions(): ApiExtensions {
  return {
    pause: async (vm) => (await migration()).pauseVm(vm),
    resume: async (vm) => (await migration()).resumeVm(vm),
    snapshot: async (vm, dir) => void (await (await migration()).snapshotVm(vm, dir, { leavePaused: true })),
    sendMigration: async (vm, url, onProgress) =>
      void (await (await migration()).sendMigration(vm, url, { onProgress })),
    runRestored: async (dir, opts) => (await migration()).runRestored(dir, opts),
    runReceived: async (url, opts) => (await migration()).runReceived(url, opts),
  };
}
