import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Where this build lives. This module is <dist>/core/plugin/locations.js, so the build
 * folder is two levels up (dist/, or .build/<name>/ for a private build) and the
 * repository root is the nearest ancestor holding package.json. Found once per process (discovery asks for
 * every manifest's modules).
 */
export function buildLocations(): { distDir: string; repoRoot: string } {
  return (locations ??= findLocations());
}

let locations: { distDir: string; repoRoot: string } | undefined;

function findLocations(): { distDir: string; repoRoot: string } {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const distDir = path.resolve(here, '..', '..');
  let root = path.dirname(distDir);
  for (let d = root; ; d = path.dirname(d)) {
    if (fs.existsSync(path.join(d, 'package.json'))) {
      root = d;
      break;
    }
    if (path.dirname(d) === d) break;
  }
  return { distDir, repoRoot: root };
}

const isInside = (child: string, parent: string): boolean => {
  const rel = path.relative(parent, child);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
};

/** The real path of `p`, or `p` itself when it does not exist (yet). */
const real = (p: string): string => {
  try {
    return fs.realpathSync.native(p); // one realpath(3), not an lstat per path component
  } catch {
    return p;
  }
};

/**
 * Why the module `file`, named `rel` in a manifest, is not inside its plugin folder `base`
 * ('../x.js', an absolute path, or a symbolic link that leads out); undefined when it is.
 * A plugin's modules are executed, so a manifest must not name code elsewhere.
 */
function escapesFolder(base: string, rel: string, file: string): string | undefined {
  if (path.isAbsolute(rel)) return 'is an absolute path';
  if (!isInside(file, base)) return 'points outside the plugin folder';
  if (fs.existsSync(file) && !isInside(real(file), real(base)))
    return `resolves (through a link) to ${real(file)}, outside the plugin folder`;
  return undefined;
}

/**
 * Resolves a manifest-relative module path. For manifests in this repository's source tree
 * (e.g. plugins/serial/vmm-plugin.json) "./plugin.js" means the compiled file at the same
 * place under the build folder; elsewhere (npm packages, plugins outside the repo) the path
 * is taken as written. Either way the module must lie inside the plugin's folder (or its
 * image in the build folder): otherwise the reason is thrown as an Error.
 */
export function resolvePluginModule(manifestDir: string, rel: string, loc = buildLocations()): string {
  const dir = path.resolve(manifestDir);
  const direct = path.resolve(dir, rel);
  const inSource =
    isInside(dir, loc.repoRoot) &&
    !isInside(dir, loc.distDir) &&
    // node_modules below the root are other packages; an installed tsvmm (its root itself in a
    // node_modules folder) still maps its own manifests to its build folder.
    !path.relative(loc.repoRoot, dir).split(path.sep).includes('node_modules') &&
    !isInside(dir, path.join(loc.repoRoot, '.build'));
  let base = dir;
  let file = direct;
  if (inSource) {
    const mappedDir = path.resolve(loc.distDir, path.relative(loc.repoRoot, dir));
    const mapped = path.resolve(mappedDir, rel);
    if (fs.existsSync(mapped) || !fs.existsSync(direct)) {
      base = mappedDir;
      file = mapped;
    }
  }
  const why = escapesFolder(base, rel, file);
  if (why) throw new Error(`module '${rel}' ${why} (${base}); a plugin's modules must lie inside its folder`);
  return file;
}
