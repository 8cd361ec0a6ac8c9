import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Where this build lives. This module is <dist>/core/plugin/locations.js, so the build
 * folder is two levels up (dist/, or .build/<name>/ for a private build) and the
 * repository root is the nearest ancestor holding package.json.
 */
export function buildLocations(): { distDir: string; repoRoot: string } {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const distDir = path.resolve(here, '..', '..');
  let root = path.dirname(distDir);
  for (let d = root; ; d = path.dirname(d)) {
    if (fs.existsSync(path.join(d, 'package.json'))) { root = d; break; }
    if (path.dirname(d) === d) break;
  }
  return { distDir, repoRoot: root };
}

const isInside = (child: string, parent: string): boolean => {
  const rel = path.relative(parent, child);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
};

/**
 * Resolves a manifest-relative module path. For manifests in this repository's source tree
 * (e.g. plugins/serial/vmm-plugin.json) "./plugin.js" means the compiled file at the same
 * place under the build folder; elsewhere (npm packages, plugins outside the repo) the path
 * is taken as written.
 */
export function resolvePluginModule(manifestDir: string, rel: string, loc = buildLocations()): string {
  const dir = path.resolve(manifestDir);
  const direct = path.resolve(dir, rel);
  const inSource = isInside(dir, loc.repoRoot) && !isInside(dir, loc.distDir)
    && !dir.split(path.sep).includes('node_modules') && !isInside(dir, path.join(loc.repoRoot, '.build'));
  if (inSource) {
    const mapped = path.resolve(loc.distDir, path.relative(loc.repoRoot, dir), rel);
    if (fs.existsSync(mapped) || !fs.existsSync(direct)) return mapped;
  }
  return direct;
}
