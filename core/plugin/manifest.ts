import * as fs from 'node:fs';
import { z } from 'zod';
import type { PluginManifest } from './plugin.js';
import { PluginError } from './errors.js';

const TokenName = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z_][\w.:-]*$/, 'a token name like GuestMemory');
const RelPath = z.string().min(1).max(4096);

/** Schema of `vmm-plugin.json` (or package.json's `vmmPlugin` key). */
export const PluginManifestSchema = z.strictObject({
  name: z
    .string()
    .min(1)
    .max(214)
    .regex(/^(@[a-z0-9][\w.-]*\/)?[a-z0-9][\w.-]*$/i, 'a plugin name like virtio-blk'),
  version: z.string().min(1).max(64),
  description: z.string().max(1000).optional(),
  provides: z.array(TokenName).default([]),
  requires: z.array(TokenName).default([]),
  optional: z.array(TokenName).optional(),
  uses: z.array(TokenName).optional(),
  entry: RelPath,
  cli: RelPath.optional(),
  sharedMemory: z.boolean().optional(),
}) satisfies z.ZodType<PluginManifest, unknown>;

/** Validates a manifest object; `where` names its file for the error. */
export function parseManifest(value: unknown, where: string): PluginManifest {
  const r = PluginManifestSchema.safeParse(value);
  if (!r.success) {
    const i = r.error.issues[0];
    const key = i.path.length ? `${i.path.join('.')}: ` : '';
    throw new PluginError('Manifest', `${where}: invalid plugin manifest: ${key}${i.message}`, { where });
  }
  return r.data;
}

/** Reads a JSON file that should hold a manifest (optionally under `key`). Returns undefined when `key` is absent. */
export function readManifestFile(file: string, key?: string): PluginManifest | undefined {
  let json: unknown;
  try {
    const st = fs.statSync(file);
    if (st.size > 1 << 20) throw new Error('file too large');
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new PluginError(
      'Manifest',
      `${file}: cannot read plugin manifest: ${(err as Error).message}`,
      { file },
      { cause: err },
    );
  }
  if (key !== undefined) {
    if (typeof json !== 'object' || json === null || !(key in json)) return undefined;
    json = (json as Record<string, unknown>)[key];
  }
  return parseManifest(json, file);
}
