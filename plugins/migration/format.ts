import { createHash } from 'node:crypto';
import { z } from 'zod';

/** What a snapshot directory's manifest says it is; anything else is refused. */
export const SNAPSHOT_FORMAT = 'tsvmm-snapshot';
/** The snapshot format this build writes and reads (bump on any change; older ones need an upgrade path). */
export const SNAPSHOT_FORMAT_VERSION = 1;
/** The page size guest memory is saved in (zero pages are left as holes). */
export const SNAPSHOT_PAGE = 4096;
/** File names inside a snapshot directory. */
export const SNAPSHOT_FILES = { manifest: 'manifest.json', state: 'state.json', memory: 'memory.bin' } as const;
/** Upper bounds that keep a hostile manifest from asking for absurd work before anything is checked. */
export const SNAPSHOT_LIMITS = {
  manifestBytes: 64 << 20,
  stateBytes: 256 << 20,
  regions: 64,
  extents: 1 << 22,
} as const;

const Sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'a sha256 in hex');
const Count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

/** One guest RAM region and where its bytes start in the memory file. */
export const MemoryRegionSchema = z.strictObject({
  start: Count,
  size: Count.refine((n) => n > 0 && n % SNAPSHOT_PAGE === 0, 'a positive multiple of 4096'),
  fileOffset: Count,
});

/** The guest memory file: its regions, the runs of pages written (the rest are holes: zeros) and their hash. */
export const MemoryImageSchema = z.strictObject({
  file: z.literal(SNAPSHOT_FILES.memory),
  bytes: Count,
  regions: z.array(MemoryRegionSchema).min(1).max(SNAPSHOT_LIMITS.regions),
  /** [fileOffset, length] of each run of non-zero pages, ascending, not touching. */
  extents: z.array(z.tuple([Count, Count])).max(SNAPSHOT_LIMITS.extents),
  /** sha256 over every extent's bytes, in order. */
  sha256: Sha256,
});

/** The body of manifest.json (its `sha256` covers the JSON text of this body). */
export const ManifestBodySchema = z.strictObject({
  format: z.literal(SNAPSHOT_FORMAT),
  version: z.number().int().min(1),
  createdAt: z.string().max(64),
  /** The VM config as written, and the folder its relative paths start from. */
  config: z.unknown(),
  baseDir: z.string().min(1).max(4096),
  plugins: z
    .array(z.strictObject({ instance: z.string().max(256), name: z.string().max(256), version: z.string().max(64) }))
    .max(1024),
  state: z.strictObject({ file: z.literal(SNAPSHOT_FILES.state), bytes: Count, sha256: Sha256 }),
  memory: MemoryImageSchema,
});

/** A manifest's body as validated. */
export type ManifestBody = z.output<typeof ManifestBodySchema>;
/** The memory part of a manifest. */
export type MemoryImage = z.output<typeof MemoryImageSchema>;

/** sha256 in hex of some bytes or text. */
export const sha256 = (data: Uint8Array | string): string => createHash('sha256').update(data).digest('hex');

/** The text of manifest.json: the body and a sha256 over its JSON. */
export function manifestText(body: ManifestBody): string {
  const json = JSON.stringify(body);
  return `{"sha256":"${sha256(json)}","body":${json}}\n`;
}
