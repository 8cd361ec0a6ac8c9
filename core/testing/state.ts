import { z } from 'zod';
import { bytes, u64 } from '../state/codecs.js';
import { restoreSnapshot, takeSnapshot } from '../state/persist.js';
import { StateError } from '../state/errors.js';
import { defineState, type SavedState, type Snapshottable } from '../state/snapshottable.js';

/** The state of FakeSnapshottable: a counter, a u64 and some bytes (one of each saved form). */
export const FakeStateSpec = defineState({
  name: 'fake',
  version: 2,
  schema: z.strictObject({ counter: z.number().int().min(0).max(1000), big: u64, blob: bytes(16) }),
  // Version 1 had no blob.
  upgrades: { 1: (old) => (typeof old === 'object' && old !== null ? { ...old, blob: '' } : old) },
});

/**
 * A Snapshottable test double: its state is three fields; `limit` plays an instance-specific check
 * (checkState refuses a counter above it) and `failLoad` makes loadState throw, for tests of the
 * registry's all-or-nothing restore.
 */
export class FakeSnapshottable implements Snapshottable<z.output<typeof FakeStateSpec.schema>> {
  readonly stateSpec = FakeStateSpec;
  counter = 0;
  big = 0n;
  blob = new Uint8Array(0);
  /** How often loadState ran. */
  loads = 0;
  /** When set, loadState throws this. */
  failLoad?: Error;

  constructor(
    readonly id: string,
    readonly limit = 1000,
  ) {}

  saveState(): z.output<typeof FakeStateSpec.schema> {
    return { counter: this.counter, big: this.big, blob: this.blob.slice() };
  }
  checkState(s: z.output<typeof FakeStateSpec.schema>): void {
    if (s.counter > this.limit) throw new Error(`counter ${s.counter} above this instance's limit ${this.limit}`);
  }
  loadState(s: z.output<typeof FakeStateSpec.schema>): void {
    this.loads++;
    if (this.failLoad) throw this.failLoad;
    this.counter = s.counter;
    this.big = s.big;
    this.blob = s.blob.slice();
  }
}

/**
 * The round trip every Snapshottable must pass: save `from`, send the saved form through JSON, restore
 * it into `to` (a fresh instance), save `to` again. Returns both saved forms for the test to compare
 * (they must be deep-equal) and the JSON text.
 */
export function roundTripState(
  from: Snapshottable,
  to: Snapshottable,
): { first: SavedState; second: SavedState; json: string } {
  const first = takeSnapshot(from);
  const json = JSON.stringify(first);
  restoreSnapshot(to, JSON.parse(json));
  return { first, second: takeSnapshot(to), json };
}

/**
 * Restores each of `hostile` into `target` and returns what went wrong, or [] when every one was refused
 * with a StateError (a one-line message) and left the target's saved state exactly as it was.
 * Use it with `expect(hostileStateProblems(...)).to.deep.equal([])`.
 */
export function hostileStateProblems(target: Snapshottable, hostile: readonly unknown[]): string[] {
  const problems: string[] = [];
  const before = JSON.stringify(takeSnapshot(target));
  hostile.forEach((bad, i) => {
    const what = `#${i} ${safeJson(bad)}`;
    try {
      restoreSnapshot(target, bad);
      problems.push(`${what}: accepted`);
    } catch (err) {
      if (!(err instanceof StateError)) problems.push(`${what}: threw ${String(err)} (not a StateError)`);
      else if (err.kind === 'Load') problems.push(`${what}: passed validation, failed while loading: ${err.message}`);
      else if (/\n/.test(err.message)) problems.push(`${what}: message has several lines`);
    }
    const after = JSON.stringify(takeSnapshot(target));
    if (after !== before) problems.push(`${what}: changed the state`);
  });
  return problems;
}

function safeJson(v: unknown): string {
  try {
    const s = JSON.stringify(v) ?? String(v);
    return s.length > 120 ? `${s.slice(0, 117)}...` : s;
  } catch {
    return String(v);
  }
}

/** `saved` with `data` changed by `edit` (for hostile variants of a good saved state). */
export function withData(saved: SavedState, edit: (data: Record<string, unknown>) => unknown): unknown {
  return { ...saved, data: edit({ ...(saved.data as Record<string, unknown>) }) };
}
