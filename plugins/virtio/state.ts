import { z } from 'zod';
import { u16, u64 } from '../../core/state/codecs.js';
import { MAX_QUEUE_SIZE, isPowerOfTwo } from './constants.js';
import { VirtQueueError } from './errors.js';
import type { SplitQueue, SplitQueueProgress } from './split-queue.js';

const QueueSize = z
  .number()
  .int()
  .refine((n) => isPowerOfTwo(n) && n <= MAX_QUEUE_SIZE, 'power of two up to 32768');

/**
 * The saved state of one split queue: the driver's layout (size, ready, ring addresses) and the
 * device's progress through the rings. Part of a transport's state (whose version covers it);
 * untrusted on restore. Ring addresses are checked against guest memory when the queue is
 * re-activated.
 */
export const QueueStateSchema = z.strictObject({
  maxSize: QueueSize,
  size: QueueSize,
  ready: z.boolean(),
  descTable: u64,
  availRing: u64,
  usedRing: u64,
  active: z.boolean(),
  nextAvail: u16,
  nextUsed: u16,
  signalledUsed: u16,
});

/** The in-memory form of a queue's state (addresses as bigint). */
export type QueueState = z.output<typeof QueueStateSchema>;

/** The state of `q` now. */
export function saveQueue(q: SplitQueue): QueueState {
  return {
    maxSize: q.maxSize,
    size: q.size,
    ready: q.ready,
    descTable: q.descTable,
    availRing: q.availRing,
    usedRing: q.usedRing,
    active: q.active,
    ...q.progress(),
  };
}

/** Refuses a (schema-valid) state that does not fit `q`: another maximum size, or a larger size. Changes nothing. */
export function checkQueueState(q: SplitQueue, s: QueueState): void {
  const bad = (why: string): never => {
    throw new VirtQueueError('InvalidState', `queue ${q.index}: ${why}`, { index: q.index });
  };
  if (s.maxSize !== q.maxSize) bad(`saved maximum size ${s.maxSize} differs from the device's ${q.maxSize}`);
  if (s.size > q.maxSize) bad(`saved size ${s.size} exceeds ${q.maxSize}`);
  if (s.active && !s.ready) bad('saved as active but not ready');
}

/**
 * Loads a checked state's layout into `q` (reset first). Returns the progress to pass to
 * `q.activate()` when the queue was active; the caller re-activates it with the restored memory and
 * features, which validates alignment and ring placement.
 */
export function loadQueueState(q: SplitQueue, s: QueueState): SplitQueueProgress | undefined {
  q.reset();
  q.size = s.size;
  q.ready = s.ready;
  q.descTable = s.descTable;
  q.availRing = s.availRing;
  q.usedRing = s.usedRing;
  return s.active ? { nextAvail: s.nextAvail, nextUsed: s.nextUsed, signalledUsed: s.signalledUsed } : undefined;
}
