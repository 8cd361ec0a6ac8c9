import { defineState } from 'tsvmm';
import { z } from 'zod';

/**
 * What a virtio-rng device saves besides its queue (the transport saves the queue and nests this):
 * the queue size the driver saw, so a snapshot is refused by a device of another shape, and the
 * counters, so they continue where they were. Entropy itself is never saved.
 */
export const RngStateSpec = defineState({
  name: 'virtio-rng',
  version: 1,
  schema: z.strictObject({
    queueSize: z.number().int().min(2).max(32768),
    requests: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
    bytes: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  }),
});

/** The in-memory form of a virtio-rng device's state. */
export type RngState = z.output<typeof RngStateSpec.schema>;
