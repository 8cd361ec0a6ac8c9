import { z } from 'zod';
import { StateError } from './errors.js';
import { SavedStateSchema, type JsonValue, type SavedState, type Snapshottable } from './snapshottable.js';

/** At most this many schema issues are quoted in one error. */
const MAX_ISSUES = 4;

/** The issues of a zod error as one short line: `path: message; ...`. */
export function describeIssues(err: z.ZodError): string {
  const parts = err.issues
    .slice(0, MAX_ISSUES)
    .map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`);
  if (err.issues.length > MAX_ISSUES) parts.push(`and ${err.issues.length - MAX_ISSUES} more`);
  return parts.join('; ');
}

/** Saves `s`'s state: `{ id, version, data }` with data in the plain saved form. */
export function takeSnapshot<T>(s: Snapshottable<T>): SavedState {
  const spec = s.stateSpec;
  let state: T;
  try {
    state = s.saveState();
  } catch (err) {
    if (err instanceof StateError) throw err; // a nested part's, already naming it
    throw new StateError(
      'Save',
      `${s.id}: cannot save its ${spec.name} state: ${(err as Error).message}`,
      { id: s.id },
      {
        cause: err,
      },
    );
  }
  const r = z.safeEncode(spec.schema, state);
  if (!r.success)
    throw new StateError(
      'Save',
      `${s.id}: its ${spec.name} state does not fit its own schema: ${describeIssues(r.error)}`,
      {
        id: s.id,
      },
    );
  return { id: s.id, version: spec.version, data: r.data as JsonValue };
}

/**
 * Validates an untrusted saved state for `s` and returns it decoded: the envelope, the id, the
 * version (upgrading an older one), the schema, then `s.checkState`. Changes nothing.
 */
export function readSnapshot<T>(s: Snapshottable<T>, saved: unknown): T {
  const spec = s.stateSpec;
  const env = SavedStateSchema.safeParse(saved);
  if (!env.success)
    throw new StateError('Invalid', `${s.id}: not a saved state: ${describeIssues(env.error)}`, { id: s.id });
  const { id, version } = env.data;
  if (id !== s.id)
    throw new StateError('Mismatch', `${s.id}: the saved state is for '${id}'`, { id: s.id, savedId: id });
  if (version > spec.version)
    throw new StateError(
      'Version',
      `${s.id}: saved ${spec.name} state version ${version} is newer than this build reads (up to ${spec.version})`,
      { id, version, current: spec.version },
    );
  let data = env.data.data;
  for (let v = version; v < spec.version; v++) {
    const up = spec.upgrades?.[v];
    if (!up)
      throw new StateError(
        'Version',
        `${s.id}: saved ${spec.name} state version ${version} is no longer readable (this build reads ${spec.version})`,
        {
          id,
          version,
          current: spec.version,
        },
      );
    try {
      data = up(data);
    } catch (err) {
      throw new StateError(
        'Invalid',
        `${s.id}: cannot upgrade saved ${spec.name} state from version ${v}: ${(err as Error).message}`,
        { id, version: v },
        { cause: err },
      );
    }
  }
  const r = spec.schema.safeParse(data);
  if (!r.success)
    throw new StateError('Invalid', `${s.id}: invalid saved ${spec.name} state: ${describeIssues(r.error)}`, {
      id,
      version,
    });
  try {
    s.checkState?.(r.data);
  } catch (err) {
    if (err instanceof StateError) throw err; // a nested part's, already naming it
    throw new StateError(
      'Invalid',
      `${s.id}: saved ${spec.name} state does not fit: ${(err as Error).message}`,
      { id, version },
      { cause: err },
    );
  }
  return r.data;
}

/**
 * Restores `s` from an untrusted saved state: readSnapshot, then `s.loadState`. A state that fails
 * validation changes nothing (one StateError); one that fails while loading is a 'Load' error.
 */
export function restoreSnapshot<T>(s: Snapshottable<T>, saved: unknown): void {
  loadChecked(s, readSnapshot(s, saved));
}

/** Applies a state readSnapshot returned; a failure becomes StateError 'Load'. */
export function loadChecked<T>(s: Snapshottable<T>, state: T): void {
  try {
    s.loadState(state);
  } catch (err) {
    throw new StateError(
      'Load',
      `${s.id}: restoring ${s.stateSpec.name} state failed part-way: ${(err as Error).message}`,
      { id: s.id },
      { cause: err },
    );
  }
}
