import { z } from 'zod';
import { u64 } from '../../core/state/codecs.js';
import { defineState } from '../../core/state/snapshottable.js';
import { VirtioBlkError } from './errors.js';

/**
 * What a virtio-blk device saves besides its queues (the transport saves those and nests this): the
 * shape the driver saw, so a snapshot is refused on a device whose disk or queues differ (the guest
 * would read past its new end or address queues that are not there). The device has no other
 * guest-visible state: its config space is read-only and requests in flight are refused at save
 * time (pause the VM and await idle() first).
 */
export const BlkStateSpec = defineState({
  name: 'virtio-blk',
  version: 1,
  schema: z.strictObject({
    /** Capacity in 512-byte sectors. */
    capacity: u64,
    readOnly: z.boolean(),
    blockSize: z
      .number()
      .int()
      .min(512)
      .max(1 << 16),
    numQueues: z.number().int().min(1).max(64),
    queueSize: z.number().int().min(4).max(32768),
  }),
});

/** The in-memory form of a virtio-blk device's state. */
export type BlkState = z.output<typeof BlkStateSpec.schema>;

/** Refuses a state saved by a device of another shape. */
export function checkBlkState(s: BlkState, own: BlkState): void {
  for (const k of ['capacity', 'readOnly', 'blockSize', 'numQueues', 'queueSize'] as const)
    if (s[k] !== own[k])
      throw new VirtioBlkError('State', `it was saved with ${k} ${s[k]}, this device has ${own[k]}`, { field: k });
}
