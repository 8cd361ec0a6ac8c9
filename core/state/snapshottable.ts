import { z } from 'zod';

/** Plain JSON data: what a saved state is made of (no bigint, no Uint8Array, no undefined). */
export type JsonValue = null | boolean | number | string | readonly JsonValue[] | { readonly [k: string]: JsonValue };

/**
 * Converts a saved state of an older version into the next version's saved form. Its input is
 * untrusted (check before using it); its output is validated by the next step or the current schema.
 */
export type StateUpgrade = (saved: unknown) => unknown;

/**
 * What a kind of state is: a name for messages, the version this build writes, the zod schema that
 * decodes the saved form (plain JSON data, untrusted) into the in-memory form and encodes it back
 * (use the codecs of codecs.ts for bigint and bytes), and upgrades from older versions.
 */
export interface StateSpec<T> {
  /** Human-readable kind, e.g. '16550A UART'; appears in errors. */
  readonly name: string;
  /** The version this build saves; a positive integer, bumped on every change of the saved form. */
  readonly version: number;
  /** Decodes (validating) the saved form into T, and encodes T into the saved form. */
  readonly schema: z.ZodType<T, unknown>;
  /** `upgrades[n]` turns version n's saved form into version n+1's; a version without a path is refused. */
  readonly upgrades?: Readonly<Record<number, StateUpgrade>>;
}

/**
 * An object whose state is saved and restored (Cloud Hypervisor's Snapshottable, Firecracker's Persist):
 * devices, the machine, the irqchip and clock, vCPUs. Restore happens into a freshly built object (the
 * same config, in a new process or the destination of a migration) or into the same one.
 * Call it through takeSnapshot / readSnapshot / restoreSnapshot (persist.ts), never directly with
 * untrusted data: they validate the saved form first.
 */
export interface Snapshottable<T = unknown> {
  /** Stable and unique within the VM; the same in every process assembled from the same config. */
  readonly id: string;
  /** The schema and version of the saved form. */
  readonly stateSpec: StateSpec<T>;
  /**
   * The current state in its in-memory form. No side effects: a VM that saved its state (paused)
   * may resume as if nothing happened (a failed or cancelled migration). Throws when the object cannot
   * be saved now (virtio-blk with requests in flight: pause and let them finish first).
   */
  saveState(): T;
  /**
   * Optional checks of a schema-valid state against this instance (queue counts, FIFO capacity, a
   * blob's size); throws a VmmError naming what is wrong. Changes nothing.
   */
  checkState?(state: T): void;
  /**
   * Applies a state that passed the schema and checkState. It should not fail; when it does (e.g. a
   * restored virtqueue whose rings no longer lie in guest memory) the object may be half-restored
   * and the VM must be discarded (the registry says so in its error).
   */
  loadState(state: T): void;
}

/** The saved form of one object's state: its id, the state version, and the state as plain JSON data. */
export interface SavedState {
  readonly id: string;
  readonly version: number;
  readonly data: JsonValue;
}

/** Upper bound on an id's length in a saved state. */
export const MAX_STATE_ID_LENGTH = 256;

/** The envelope of a saved state; `data` is checked by the owner's schema. */
export const SavedStateSchema = z.strictObject({
  id: z.string().min(1).max(MAX_STATE_ID_LENGTH),
  version: z
    .number()
    .int()
    .min(1)
    .max(2 ** 31 - 1),
  data: z.unknown(),
});

/** Declares a StateSpec, inferring T from the schema's output. */
export function defineState<S extends z.ZodType>(spec: {
  name: string;
  version: number;
  schema: S;
  upgrades?: Readonly<Record<number, StateUpgrade>>;
}): StateSpec<z.output<S>> {
  if (!Number.isInteger(spec.version) || spec.version < 1) throw new RangeError(`state version ${spec.version}`);
  return Object.freeze({ ...spec, schema: spec.schema as unknown as z.ZodType<z.output<S>, unknown> });
}

/** Whether `x` implements Snapshottable (a device, say, that may or may not). */
export function isSnapshottable(x: unknown): x is Snapshottable {
  const s = x as Partial<Snapshottable> | undefined;
  return (
    typeof s === 'object' &&
    s !== null &&
    typeof s.id === 'string' &&
    typeof s.stateSpec === 'object' &&
    typeof s.saveState === 'function' &&
    typeof s.loadState === 'function'
  );
}
