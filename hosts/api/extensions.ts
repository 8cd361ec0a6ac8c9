import type { PluginEntry } from '../../core/config/schema.js';
import { HotplugError } from '../../core/vmm/hotplug.js';
import { ApiError, type ApiErrorKind } from './errors.js';
import type { ApiExtensions } from './vmm.js';

/** HotplugError kinds as API errors: an id in use 409, an unknown device 404, a bad entry 400, the rest 500. */
const HOTPLUG_KINDS: Partial<Record<string, ApiErrorKind>> = {
  Duplicate: 'AlreadyExists',
  UnknownDevice: 'NotFound',
  UnknownPlugin: 'BadRequest',
  BadConfig: 'BadRequest',
};

/** Runs a hotplug call, turning its one-line HotplugError into the API error of its kind. */
async function hotplug<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof HotplugError)
      throw new ApiError(HOTPLUG_KINDS[err.kind] ?? 'Failed', err.message, undefined, { cause: err });
    throw err;
  }
}

/** The migration plugin's functions, imported on first use (a VM that never snapshots does not load them). */
const migration = () => import('../../plugins/migration/index.js');

/**
 * What the API gets from other helpers' contracts: C2 (core/vmm/hotplug.ts: AssembledVm.addDevice/removeDevice) and
 * C3 (plugins/migration: pause with devices quiet, snapshot, send / receive a migration, restore).
 */
export function defaultExtensions(): ApiExtensions {
  return {
    addDevice: (vm, entry) => hotplug(() => vm.addDevice(entry as PluginEntry)),
    removeDevice: (vm, id) => hotplug(() => vm.removeDevice(id)),
    pause: async (vm) => (await migration()).pauseVm(vm),
    resume: async (vm) => (await migration()).resumeVm(vm),
    snapshot: async (vm, dir) => void (await (await migration()).snapshotVm(vm, dir, { leavePaused: true })),
    sendMigration: async (vm, url, onProgress) =>
      void (await (await migration()).sendMigration(vm, url, { onProgress })),
    runRestored: async (dir, opts) => (await migration()).runRestored(dir, opts),
    runReceived: async (url, opts) => (await migration()).runReceived(url, opts),
  };
}
