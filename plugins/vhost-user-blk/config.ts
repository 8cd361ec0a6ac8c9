import { z } from 'zod';
import { shadowRingsKey, VhostUserCommonConfig } from '../vhost-user/config.js';

/** One disk per plugin instance; the back end (e.g. qemu-storage-daemon) listens on `socket`. */
export const VhostUserBlkConfigSchema = z.strictObject({
  ...VhostUserCommonConfig,
  /** Queues offered to the driver (at most what the back end serves). */
  numQueues: z.number().int().min(1).max(64).default(1),
  /** Lossless restarts of a back end without in-flight tracking (qemu-storage-daemon) by default. */
  shadowRings: shadowRingsKey('auto'),
});
/** One vhost-user-blk instance's validated config. */
export type VhostUserBlkConfig = z.output<typeof VhostUserBlkConfigSchema>;
