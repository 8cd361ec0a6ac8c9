import { z } from 'zod';
import { StateError } from './errors.js';
import { SavedStateSchema, type SavedState } from './snapshottable.js';
import { describeIssues, loadChecked, readSnapshot, takeSnapshot } from './persist.js';
import type { StateRegistry } from './registry.js';

/** Upper bound on the number of saved states restored at once. */
export const MAX_SAVED_STATES = 4096;

/** Saves every snapshottable of the VM, in the registry's walk order. Call it with the VM paused. */
export function saveVmState(registry: StateRegistry): SavedState[] {
  return registry.all().map((s) => takeSnapshot(s));
}

/**
 * Restores every snapshottable of the VM from untrusted saved states (as saveVmState wrote them, in
 * any order). Every state must pair with exactly one object by id, and every one is validated before
 * any is applied: a hostile or mismatched snapshot changes nothing and throws one StateError. Then
 * the states are loaded in walk order; a failure there ('Load') leaves the VM partly restored.
 */
export function restoreVmState(registry: StateRegistry, saved: unknown): void {
  checkVmState(registry, saved)();
}

/**
 * The validation half of restoreVmState: pairs and validates every saved state (throws one StateError, changing
 * nothing) and returns what loads them, in walk order (a failure there is a 'Load' StateError). Lets a caller check
 * states early (a migration's destination, while the last pages still come) and load them later.
 */
export function checkVmState(registry: StateRegistry, saved: unknown): () => void {
  const list = z.array(z.unknown()).max(MAX_SAVED_STATES).safeParse(saved);
  if (!list.success) throw new StateError('Invalid', `not a list of saved states: ${describeIssues(list.error)}`);
  const byId = new Map<string, unknown>();
  list.data.forEach((entry, i) => {
    const env = SavedStateSchema.safeParse(entry);
    if (!env.success) throw new StateError('Invalid', `saved state #${i}: ${describeIssues(env.error)}`, { index: i });
    if (byId.has(env.data.id))
      throw new StateError('Mismatch', `the snapshot holds two states for '${env.data.id}'`, { id: env.data.id });
    byId.set(env.data.id, entry);
  });
  const items = registry.all();
  const missing = items.filter((s) => !byId.has(s.id)).map((s) => s.id);
  if (missing.length)
    throw new StateError('Mismatch', `the snapshot has no state for ${missing.map((m) => `'${m}'`).join(', ')}`, {
      missing,
    });
  const known = new Set(items.map((s) => s.id));
  const unknown = [...byId.keys()].filter((id) => !known.has(id));
  if (unknown.length)
    throw new StateError(
      'Mismatch',
      `the snapshot holds state for ${unknown.map((u) => `'${u}'`).join(', ')}, which this VM does not have`,
      { unknown },
    );
  const decoded = items.map((s) => readSnapshot(s, byId.get(s.id)));
  return () =>
    items.forEach((s, i) => {
      try {
        loadChecked(s, decoded[i]);
      } catch (err) {
        const e = err as StateError;
        throw new StateError('Load', `${e.message}; the VM is partly restored and must be discarded`, e.data, {
          cause: err,
        });
      }
    });
}
