import * as fs from 'node:fs';
import * as path from 'node:path';
import type { PluginManifest } from './plugin.js';
import { PluginError } from './errors.js';
import { readManifestFile } from './manifest.js';
import { buildLocations, resolvePluginModule } from './locations.js';

/** The file name of a plugin's manifest, in the plugin's folder. */
export const MANIFEST_FILE = 'vmm-plugin.json';

/**
 * A plugin found by discovery: its manifest, where it was found (repo plugins/, node_modules, or a config path) and the
 * modules to load for it.
 */
export interface DiscoveredPlugin {
  readonly manifest: PluginManifest;
  readonly manifestPath: string;
  readonly dir: string;
  readonly source: 'repo' | 'npm' | 'path';
  /** Absolute path of the entry module (mapped to the build folder for in-repo manifests). */
  readonly entryPath: string;
  readonly cliPath?: string;
}

/** Where discovery looks for plugins, and what to do with manifests it cannot read. */
export interface DiscoveryOptions {
  /** Folders whose sub-folders hold vmm-plugin.json (default: <repo>/plugins). */
  pluginDirs?: string[];
  /** node_modules folders to scan (default: defaultNodeModules: <repo>/node_modules, and the one tsvmm is in). */
  nodeModules?: string[];
  /** Called for manifests that exist but cannot be read; discovery goes on without them. */
  onBroken?: (err: PluginError) => void;
}

function fromManifest(
  manifest: PluginManifest,
  manifestPath: string,
  source: DiscoveredPlugin['source'],
): DiscoveredPlugin {
  const dir = path.dirname(manifestPath);
  const resolve = (key: 'entry' | 'cli', rel: string): string => {
    try {
      return resolvePluginModule(dir, rel);
    } catch (err) {
      throw new PluginError(
        'Manifest',
        `${manifestPath}: ${key}: ${(err as Error).message}`,
        { file: manifestPath, [key]: rel },
        { cause: err },
      );
    }
  };
  return {
    manifest,
    manifestPath,
    dir,
    source,
    entryPath: resolve('entry', manifest.entry),
    cliPath: manifest.cli ? resolve('cli', manifest.cli) : undefined,
  };
}

const subdirs = (dir: string): string[] => {
  try {
    return fs
      .readdirSync(dir, { withFileTypes: true })
      .filter((d) => d.isDirectory() || d.isSymbolicLink())
      .map((d) => d.name)
      .sort();
  } catch {
    return [];
  }
};

/** Reads the manifest in `dir` (a folder with vmm-plugin.json, or a package with "vmmPlugin"). */
export function readPluginAt(dir: string, source: DiscoveredPlugin['source'] = 'path'): DiscoveredPlugin {
  const own = path.join(dir, MANIFEST_FILE);
  if (fs.existsSync(own)) return fromManifest(readManifestFile(own)!, own, source);
  const pkg = path.join(dir, 'package.json');
  if (fs.existsSync(pkg)) {
    const m = readManifestFile(pkg, 'vmmPlugin');
    if (m) return fromManifest(m, pkg, source);
  }
  throw new PluginError('Manifest', `${dir}: no ${MANIFEST_FILE} (nor a package.json with a "vmmPlugin" key) there`, {
    dir,
  });
}

/**
 * Finds plugins: (a) every folder under <repo>/plugins/ with a vmm-plugin.json, (b) installed
 * npm packages (node_modules/* and node_modules/@scope/*) whose package.json has "vmmPlugin".
 * In-repo plugins win over npm packages of the same name. Path plugins named in a YAML file
 * are read separately (readPluginAt).
 */
export function discoverPlugins(opts: DiscoveryOptions = {}): Map<string, DiscoveredPlugin> {
  const loc = buildLocations();
  const found = new Map<string, DiscoveredPlugin>();
  const add = (p: DiscoveredPlugin): void => {
    if (!found.has(p.manifest.name)) found.set(p.manifest.name, p);
  };
  const tryRead = (fn: () => DiscoveredPlugin | undefined): void => {
    try {
      const p = fn();
      if (p) add(p);
    } catch (err) {
      if (err instanceof PluginError) opts.onBroken?.(err);
      else throw err;
    }
  };
  for (const root of opts.pluginDirs ?? [path.join(loc.repoRoot, 'plugins')]) {
    for (const name of subdirs(root)) {
      const m = path.join(root, name, MANIFEST_FILE);
      let st: fs.Stats;
      try {
        st = fs.statSync(m);
      } catch {
        continue;
      }
      // Parsed manifests are kept while the file keeps its size and mtime (one stat instead of a parse).
      const key = `${st.mtimeMs}:${st.size}:${st.ino}`;
      const hit = manifestCache.get(m);
      if (hit?.key === key) {
        if (hit.result instanceof PluginError) opts.onBroken?.(hit.result);
        else add(hit.result);
        continue;
      }
      let result: DiscoveredPlugin | PluginError;
      try {
        result = fromManifest(readManifestFile(m)!, m, 'repo');
      } catch (err) {
        if (!(err instanceof PluginError)) throw err;
        result = err;
      }
      if (manifestCache.size > 1000) manifestCache.clear();
      manifestCache.set(m, { key, result });
      tryRead(() => {
        if (result instanceof PluginError) throw result;
        return result;
      });
    }
  }
  for (const nm of opts.nodeModules ?? defaultNodeModules(loc.repoRoot)) {
    const { plugins, broken } = scanNodeModules(nm);
    for (const err of broken) opts.onBroken?.(err);
    for (const p of plugins) add(p);
  }
  return found;
}

/**
 * The node_modules folders discovery scans by default: <repo>/node_modules and, when tsvmm is itself
 * an installed package (<project>/node_modules/tsvmm or <project>/node_modules/@scope/tsvmm), the
 * node_modules folder holding it, where npm puts the plugins installed beside it.
 */
export function defaultNodeModules(repoRoot: string): string[] {
  const out = [path.join(repoRoot, 'node_modules')];
  let up = path.dirname(repoRoot);
  if (path.basename(up).startsWith('@')) up = path.dirname(up);
  if (path.basename(up) === 'node_modules') out.push(up);
  return out;
}

interface NpmScan {
  readonly plugins: readonly DiscoveredPlugin[];
  readonly broken: readonly PluginError[];
}
const npmCache = new Map<string, { sig: string; scan: NpmScan }>();
const manifestCache = new Map<string, { key: string; result: DiscoveredPlugin | PluginError }>();

/** Forgets earlier scans and parsed manifests (tests that edit plugins in place). */
export function clearDiscoveryCache(): void {
  npmCache.clear();
  manifestCache.clear();
}

const mtimeOf = (dir: string): string => {
  try {
    const st = fs.statSync(dir);
    return `${st.mtimeMs}:${st.ino}`;
  } catch {
    return '-';
  }
};

/**
 * The npm packages of one node_modules folder with a "vmmPlugin" key. A `vmm` process asks
 * several times (plugin CLI commands, the host check, the run) and the folder holds ~100
 * packages: the scan is kept while the folder and its @scope folders keep their mtime
 * (installing or removing a package changes it).
 */
function scanNodeModules(nm: string): NpmScan {
  const names = subdirs(nm).filter((n) => !n.startsWith('.'));
  const scopes = names.filter((n) => n.startsWith('@'));
  const sig = [mtimeOf(nm), ...scopes.map((s) => `${s}=${mtimeOf(path.join(nm, s))}`)].join('|');
  const hit = npmCache.get(nm);
  if (hit && hit.sig === sig) return hit.scan;

  const pkgs: string[] = [];
  for (const name of names) {
    if (name.startsWith('@')) for (const sub of subdirs(path.join(nm, name))) pkgs.push(path.join(nm, name, sub));
    else pkgs.push(path.join(nm, name));
  }
  const plugins: DiscoveredPlugin[] = [];
  const broken: PluginError[] = [];
  for (const dir of pkgs) {
    const pj = path.join(dir, 'package.json');
    // Cheap pre-check so we do not parse every package.json: most are not plugins.
    let text: string;
    try {
      text = fs.readFileSync(pj, 'utf8');
    } catch {
      continue;
    }
    if (!text.includes('"vmmPlugin"')) continue;
    try {
      const m = readManifestFile(pj, 'vmmPlugin');
      if (m) plugins.push(fromManifest(m, pj, 'npm'));
    } catch (err) {
      if (err instanceof PluginError) broken.push(err);
      else throw err;
    }
  }
  const scan = { plugins, broken };
  if (npmCache.size > 16) npmCache.clear();
  npmCache.set(nm, { sig, scan });
  return scan;
}
