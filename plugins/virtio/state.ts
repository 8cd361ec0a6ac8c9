import { z } from 'zod';
import { MAX_QUEUE_SIZE, isPowerOfTwo } from './constants.js';
import { VirtQueueError } from './errors.js';
import type { SplitQueue } from './split-queue.js';

/** u64 values travel as decimal strings in JSON snapshots. */
const U64String = z
  .string()
  .regex(/^\d{1,20}$/)
  .transform((s) => BigInt(s))
  .refine((v) => v < 1n << 64n, 'not a u64');
const U16 = z.number().int().min(0).max(0xffff);

export const QUEUE_STATE_VERSION = 1;

/** The persisted state of one split queue (version 1). Restored input is untrusted. */
export const QueueStateSchema = z.strictObject({
  version: z.literal(QUEUE_STATE_VERSION),
  maxSize: z
    .number()
    .int()
    .refine((n) => isPowerOfTwo(n) && n <= MAX_QUEUE_SIZE, 'power of two up to 32768'),
  size: z
    .number()
    .int()
    .refine((n) => isPowerOfTwo(n) && n <= MAX_QUEUE_SIZE, 'power of two up to 32768'),
  ready: z.boolean(),
  descTable: U64String,
  availRing: U64String,
  usedRing: U64String,
  active: z.boolean(),
  nextAvail: U16,
  nextUsed: U16,
  signalledUsed: U16,
});
export type QueueState = z.input<typeof QueueStateSchema>;

export function saveQueue(q: SplitQueue): QueueState {
  const p = q.progress();
  return {
    version: QUEUE_STATE_VERSION,
    maxSize: q.maxSize,
    size: q.size,
    ready: q.ready,
    descTable: q.descTable.toString(),
    availRing: q.availRing.toString(),
    usedRing: q.usedRing.toString(),
    active: q.active,
    ...p,
  };
}

/**
 * Validates `state` (untrusted) and loads the driver's layout into `q`. Returns the
 * progress to pass to `q.activate()` when the state says the queue was active; the
 * caller re-activates it with the restored memory and features, which re-validates
 * alignment and ring placement.
 */
export function restoreQueue(
  q: SplitQueue,
  state: unknown,
): { active: boolean; progress: { nextAvail: number; nextUsed: number; signalledUsed: number } } {
  const r = QueueStateSchema.safeParse(state);
  if (!r.success)
    throw new VirtQueueError('InvalidState', `queue ${q.index}: saved state is invalid: ${r.error.message}`, {
      index: q.index,
    });
  const s = r.data;
  if (s.maxSize !== q.maxSize) {
    throw new VirtQueueError(
      'InvalidState',
      `queue ${q.index}: saved maximum size ${s.maxSize} differs from the device's ${q.maxSize}`,
      { index: q.index },
    );
  }
  if (s.size > q.maxSize)
    throw new VirtQueueError('InvalidState', `queue ${q.index}: saved size ${s.size} exceeds ${q.maxSize}`, {
      index: q.index,
    });
  q.reset();
  q.size = s.size;
  q.ready = s.ready;
  q.descTable = s.descTable;
  q.availRing = s.availRing;
  q.usedRing = s.usedRing;
  return {
    active: s.active,
    progress: { nextAvail: s.nextAvail, nextUsed: s.nextUsed, signalledUsed: s.signalledUsed },
  };
}
