import { z } from 'zod';
import { MemoryRegionSchema } from './format.js';

/** What a migration stream's Hello says it is. */
export const MIGRATION_FORMAT = 'tsvmm-migration';
/** The stream format this build speaks (bump on any change). */
export const MIGRATION_VERSION = 4;

/** The Hello frame: the VM's config and plugins (as a snapshot manifest has them) and its memory layout. */
export const HelloSchema = z.strictObject({
  format: z.literal(MIGRATION_FORMAT),
  version: z.number().int().min(1),
  config: z.unknown(),
  baseDir: z.string().min(1).max(4096),
  plugins: z
    .array(z.strictObject({ instance: z.string().max(256), name: z.string().max(256), version: z.string().max(64) }))
    .max(1024),
  memory: z.strictObject({
    bytes: z.number().int().min(4096).max(Number.MAX_SAFE_INTEGER),
    regions: z.array(MemoryRegionSchema).min(1).max(64),
  }),
});

/** A validated Hello. */
export type Hello = z.output<typeof HelloSchema>;
