/**
 * The bundle's stamp (bundle.json): what the bundle was built from, so the launcher can tell a
 * fresh bundle from a stale one with a few stat calls and no parsing of the inputs. A bundle is
 * fresh while every compiled file it was built from, every npm package it inlined, and the set of
 * repository plugin manifests are unchanged: same size and mtime (or that mtime cut to whole seconds: the
 * sandbox's ext4 copy), or, where only the mtime differs (another copy), the same SHA-1. Outputs need only exist.
 * Anything else: stale, and the launcher runs the unbundled build instead, so a stale bundle
 * never runs old code.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The stamp's file name in the bundle folder. */
export const STAMP_FILE = 'bundle.json';
/** The stamp format's version; a stamp of another version makes the bundle stale. */
export const STAMP_VERSION = 2;

/** [size, mtimeMs, sha1 hex] of a file. */
export type FileSig = readonly [number, number, string];

/** The content of bundle.json (see the file comment): what the bundle was built from, with each file's signature. */
export interface BundleStamp {
  readonly version: number;
  /**
   * Files the bundle was built from, relative to the build folder (the bundle's parent), so a moved or copied build
   * folder checks its own files.
   */
  readonly inputs: Readonly<Record<string, FileSig>>;
  /** The repository's plugin manifests (plugins/<x>/vmm-plugin.json) at build time. */
  readonly manifests: Readonly<Record<string, FileSig>>;
  /** Output files, relative to the bundle folder, that must exist. */
  readonly outputs: readonly string[];
}

const sha1 = (file: string): string | undefined => {
  try {
    return createHash('sha1').update(fs.readFileSync(file)).digest('hex');
  } catch {
    return undefined;
  }
};

/** Size, mtime and content hash of a file (undefined: not a readable file). */
export const fileSig = (file: string): FileSig | undefined => {
  try {
    const st = fs.statSync(file);
    if (!st.isFile()) return undefined;
    const h = sha1(file);
    return h === undefined ? undefined : [st.size, st.mtimeMs, h];
  } catch {
    return undefined;
  }
};

/** Whether `file` still matches `sig`: a stat, and a hash only where the mtime moved. */
function matches(file: string, sig: FileSig | undefined): boolean {
  if (!Array.isArray(sig) || sig.length !== 3) return false;
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    return false;
  }
  if (!st.isFile() || st.size !== sig[0]) return false;
  return st.mtimeMs === sig[1] || st.mtimeMs === wholeSeconds(sig[1]) || sha1(file) === sig[2];
}

/**
 * A recorded mtime cut to whole seconds, as `mke2fs -d` copies it into the sandbox's ext4 image. A rebuilt file's
 * mtime keeps its nanoseconds, so a file whose mtime is exactly the stamp's cut to the second is that copy: it
 * matches without reading it (under TCG, hashing every input took a large part of the start-up).
 */
const wholeSeconds = (ms: number): number => Math.floor(ms / 1000) * 1000;

/** Whether `file` exists as a regular file (a stat, no read). */
const isFile = (file: string): boolean => {
  try {
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
};

/** plugins/<x>/vmm-plugin.json of the repository (relative to its root) that exist. */
export function repoManifestPaths(repoRoot: string): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(path.join(repoRoot, 'plugins')).sort();
  } catch {
    return [];
  }
  return names.map((n) => `plugins/${n}/vmm-plugin.json`).filter((rel) => fs.existsSync(path.join(repoRoot, rel)));
}

/** The repository's plugin manifests with their signatures. */
export function repoManifests(repoRoot: string): Record<string, FileSig> {
  const out: Record<string, FileSig> = {};
  for (const rel of repoManifestPaths(repoRoot)) {
    const sig = fileSig(path.join(repoRoot, rel));
    if (sig) out[rel] = sig;
  }
  return out;
}

/** Why the bundle in `bundleDir` cannot be used (undefined: it is fresh). */
export function staleReason(bundleDir: string, repoRoot: string): string | undefined {
  let stamp: BundleStamp;
  try {
    stamp = JSON.parse(fs.readFileSync(path.join(bundleDir, STAMP_FILE), 'utf8')) as BundleStamp;
  } catch {
    return `no readable ${STAMP_FILE}`;
  }
  if (
    stamp?.version !== STAMP_VERSION ||
    typeof stamp.inputs !== 'object' ||
    typeof stamp.manifests !== 'object' ||
    !Array.isArray(stamp.outputs)
  ) {
    return `${STAMP_FILE}: unknown format`;
  }
  const buildDir = path.dirname(path.resolve(bundleDir));
  for (const [rel, sig] of Object.entries(stamp.inputs)) {
    if (!matches(path.join(buildDir, rel), sig)) return `${rel} changed since the bundle was built`;
  }
  const now = new Set(repoManifestPaths(repoRoot));
  const was = stamp.manifests;
  for (const rel of new Set([...now, ...Object.keys(was)])) {
    if (!was[rel]) return `${rel} is new since the bundle was built`;
    if (!now.has(rel)) return `${rel} is gone since the bundle was built`;
    if (!matches(path.join(repoRoot, rel), was[rel])) return `${rel} changed since the bundle was built`;
  }
  for (const rel of stamp.outputs) {
    if (!isFile(path.join(bundleDir, rel))) return `${rel} is missing from the bundle`;
  }
  return undefined;
}
