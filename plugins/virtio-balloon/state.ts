import { z } from 'zod';
import { defineState } from '../../core/state/snapshottable.js';
import { VirtioBalloonError } from './errors.js';

const count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

/**
 * What a virtio-balloon saves besides its queues (the transport saves those and nests this): its
 * shape (queue size, offered features: a snapshot is refused by a balloon of another shape), the
 * target and the guest's `actual`, the statistics chain the device holds (it must give that chain
 * back after a restore), the last statistics and the counters.
 */
export const BalloonStateSpec = defineState({
  name: 'virtio-balloon',
  version: 1,
  schema: z.strictObject({
    queueSize: z.number().int().min(4).max(32768),
    /** Offered features, hex. */
    features: z.string().regex(/^[0-9a-f]{1,16}$/),
    numPages: z
      .number()
      .int()
      .min(0)
      .max(2 ** 32 - 1),
    actual: z
      .number()
      .int()
      .min(0)
      .max(2 ** 32 - 1),
    statsHead: z.number().int().min(0).max(32767).nullable(),
    stats: z.record(z.string().max(32), count).nullable(),
    metrics: z.strictObject({
      inflatedPages: count,
      deflatedPages: count,
      reportedPages: count,
      releasedBytes: count,
      refusedPages: count,
      invalidRequests: count,
      statsUpdates: count,
    }),
  }),
});

/** The in-memory form of a balloon's state. */
export type BalloonState = z.output<typeof BalloonStateSpec.schema>;

/** Refuses a state saved by a balloon of another shape, or a target above this guest's RAM. */
export function checkBalloonState(
  s: BalloonState,
  own: { queueSize: number; features: string; memoryPages: number },
): void {
  for (const k of ['queueSize', 'features'] as const)
    if (s[k] !== own[k])
      throw new VirtioBalloonError('State', `it was saved with ${k} ${s[k]}, this device has ${own[k]}`, { field: k });
  if (s.numPages > own.memoryPages)
    throw new VirtioBalloonError(
      'State',
      `its target of ${s.numPages} pages is above this guest's ${own.memoryPages}`,
      {
        field: 'numPages',
      },
    );
  if (s.statsHead !== null && s.statsHead >= s.queueSize)
    throw new VirtioBalloonError('State', `its statistics chain ${s.statsHead} is not below the queue size`, {
      field: 'statsHead',
    });
}
