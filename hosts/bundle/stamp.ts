/**
 * The bundle's stamp (bundle.json): what the bundle was built from, so the launcher can tell a
 * fresh bundle from a stale one with a few stat calls and no parsing of the inputs. A bundle is
 * fresh while every compiled file it was built from, every npm package it inlined, and the set of
 * repository plugin manifests are unchanged (same size and mtime). Anything else: stale, and the
 * launcher runs the unbundled build instead, so a stale bundle never runs old code.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export const STAMP_FILE = 'bundle.json';
export const STAMP_VERSION = 1;

/** [size, mtimeMs] of a file. */
export type FileSig = readonly [number, number];

export interface BundleStamp {
  readonly version: number;
  /** Files the bundle was built from, relative to the repository root. */
  readonly inputs: Readonly<Record<string, FileSig>>;
  /** The repository's plugin manifests (plugins/<x>/vmm-plugin.json) at build time. */
  readonly manifests: Readonly<Record<string, FileSig>>;
  /** Output files, relative to the bundle folder, that must exist. */
  readonly outputs: readonly string[];
}

export const fileSig = (file: string): FileSig | undefined => {
  try {
    const st = fs.statSync(file);
    return st.isFile() ? [st.size, st.mtimeMs] : undefined;
  } catch { return undefined; }
};

/** plugins/<x>/vmm-plugin.json of the repository, relative to its root. */
export function repoManifests(repoRoot: string): Record<string, FileSig> {
  const out: Record<string, FileSig> = {};
  let names: string[];
  try { names = fs.readdirSync(path.join(repoRoot, 'plugins')).sort(); } catch { return out; }
  for (const n of names) {
    const rel = `plugins/${n}/vmm-plugin.json`;
    const sig = fileSig(path.join(repoRoot, rel));
    if (sig) out[rel] = sig;
  }
  return out;
}

const same = (a: FileSig | undefined, b: FileSig | undefined): boolean =>
  a !== undefined && b !== undefined && a[0] === b[0] && a[1] === b[1];

/** Why the bundle in `bundleDir` cannot be used (undefined: it is fresh). */
export function staleReason(bundleDir: string, repoRoot: string): string | undefined {
  let stamp: BundleStamp;
  try {
    stamp = JSON.parse(fs.readFileSync(path.join(bundleDir, STAMP_FILE), 'utf8')) as BundleStamp;
  } catch { return `no readable ${STAMP_FILE}`; }
  if (stamp?.version !== STAMP_VERSION || typeof stamp.inputs !== 'object' || typeof stamp.manifests !== 'object' || !Array.isArray(stamp.outputs)) {
    return `${STAMP_FILE}: unknown format`;
  }
  for (const [rel, sig] of Object.entries(stamp.inputs)) {
    if (!same(fileSig(path.join(repoRoot, rel)), sig)) return `${rel} changed since the bundle was built`;
  }
  const now = repoManifests(repoRoot);
  const was = stamp.manifests;
  for (const rel of new Set([...Object.keys(now), ...Object.keys(was)])) {
    if (!same(now[rel], was[rel])) return `${rel} ${!was[rel] ? 'is new' : !now[rel] ? 'is gone' : 'changed'} since the bundle was built`;
  }
  for (const rel of stamp.outputs) {
    if (!fileSig(path.join(bundleDir, rel))) return `${rel} is missing from the bundle`;
  }
  return undefined;
}
