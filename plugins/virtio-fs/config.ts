import { z } from 'zod';
import { shadowRingsKey, VhostUserCommonConfig } from '../vhost-user/config.js';

/** One shared folder per plugin instance; the back end (virtiofsd) listens on `socket`. */
export const VirtioFsConfigSchema = z.strictObject({
  ...VhostUserCommonConfig,
  /** The name the guest mounts (`mount -t virtiofs <tag> /mnt`): 1 to 36 bytes of UTF-8, no NUL. */
  tag: z
    .string()
    .min(1)
    .refine((t) => Buffer.byteLength(t) <= 36 && !t.includes('\0'), 'at most 36 bytes, no NUL'),
  /** Request queues (besides the high-priority queue). */
  numRequestQueues: z.number().int().min(1).max(16).default(1),
  /**
   * Off by default: a virtiofsd that restarts has lost the guest's FUSE session whatever the rings, so shadow
   * rings would only put the VMM on the data path.
   */
  shadowRings: shadowRingsKey('off'),
});
/** One virtio-fs instance's validated config. */
export type VirtioFsConfig = z.output<typeof VirtioFsConfigSchema>;
