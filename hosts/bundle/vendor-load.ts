/**
 * Loads the bundle's vendor scripts (<bundle>/vendor/<pkg>-<hash>.cjs: zod, yaml, commander, pino as one CommonJS
 * file each, see build.ts) through vm.Script with V8's code cache, so a start compiles none of their ~0.9 MB again.
 * ES modules get no code cache on Node 20; these packages were most of the source `vmm run` compiled before its
 * first KVM_RUN. The cache sits beside each script (`.v8cache`, code-cache.ts); the build writes it once (a
 * warm-up run), and a process that found none (or one V8 rejected) writes it at exit, when the functions it
 * compiled lazily are in it too. A missing, stale or corrupt cache is compiled from source; an unwritable folder is
 * skipped. VMM_CODE_CACHE=0 neither reads nor writes caches.
 * The bundle places this file two levels below the bundle folder (build.ts checks), like core/plugin/locations.js.
 */
import * as fs from 'node:fs';
import { createRequire, Module } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as vm from 'node:vm';
import { cacheFileOf, cacheKey, readCache, writeCache } from './code-cache.js';

/** The vendor scripts' folder inside the bundle folder. */
export const VENDOR_DIR = 'vendor';

/** How one vendor script was loaded: whether V8 took a cache, and whether one is waiting to be written. */
export interface VendorLoad {
  readonly file: string;
  /** A cache was found and V8 accepted it. */
  readonly cacheUsed: boolean;
  /** No usable cache: saveVendorCaches writes one. */
  readonly toSave: boolean;
}

type Wrapper = (
  exports: unknown,
  require: NodeJS.Require,
  module: { exports: unknown },
  filename: string,
  dirname: string,
) => void;

const loadedModules = new Map<string, unknown>();
const loads = new Map<string, VendorLoad>();
const unsaved = new Map<string, vm.Script>();
let exitHook = false;

/**
 * Runs the CommonJS script `file` once per process (later calls return the same exports), with its code cache unless
 * `env.VMM_CODE_CACHE` is '0'. Where no cache was usable, the cache is written at process exit.
 * `shareAs`: the real path of the package's CommonJS entry (tsyringe's dist/cjs/index.js) that the script stands
 * for. Its module then sits in require.cache under that path, so a plugin outside the bundle that requires or imports
 * the package gets this very instance (tsyringe keeps its registrations per copy); and where that path is already
 * loaded (someone required the package first), its exports are returned and the script is not run.
 */
export function loadVendorFile(file: string, env: NodeJS.ProcessEnv = process.env, shareAs?: string): unknown {
  if (loadedModules.has(file)) return loadedModules.get(file);
  const cache = createRequire(file).cache;
  const earlier = shareAs === undefined ? undefined : cache[shareAs];
  if (earlier?.loaded) {
    loadedModules.set(file, earlier.exports);
    return earlier.exports;
  }
  const source = fs.readFileSync(file, 'utf8');
  const useCache = env.VMM_CODE_CACHE !== '0';
  const cached = useCache ? readCache(cacheFileOf(file), cacheKey(file)) : undefined;
  // the wrapper on the script's first line keeps its line numbers
  const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
    filename: file,
    cachedData: cached,
  });
  const cacheUsed = cached !== undefined && !script.cachedDataRejected;
  const toSave = useCache && !cacheUsed;
  if (env.VMM_DEBUG && cached !== undefined && !cacheUsed)
    process.stderr.write(`vmm: V8 rejected the code cache of ${path.basename(file)}; compiled from source\n`);
  loads.set(file, { file, cacheUsed, toSave });
  if (toSave) {
    unsaved.set(file, script);
    if (!exitHook) {
      exitHook = true;
      process.once('exit', () => saveVendorCaches());
    }
  }
  const mod = shareAs === undefined ? { exports: {} as unknown, loaded: false } : sharedModule(shareAs);
  if (shareAs !== undefined) cache[shareAs] = mod as NodeJS.Module; // as Node does: in the cache while it runs
  const wrapper = script.runInThisContext() as Wrapper;
  try {
    wrapper.call(mod.exports, mod.exports, createRequire(shareAs ?? file), mod, file, path.dirname(file));
  } catch (err) {
    if (shareAs !== undefined) delete cache[shareAs];
    throw err;
  }
  mod.loaded = true;
  loadedModules.set(file, mod.exports);
  return mod.exports;
}

/** A CommonJS module object for the package entry at `filename`, as require() would make it. */
function sharedModule(filename: string): { exports: unknown; loaded: boolean } {
  const M = Module as unknown as {
    new (id: string): NodeJS.Module;
    _nodeModulePaths(dir: string): string[];
  };
  const mod = new M(filename);
  mod.filename = filename;
  mod.paths = M._nodeModulePaths(path.dirname(filename));
  return mod;
}

/**
 * Loads the vendor script `name` (e.g. `zod-1a2b3c4d5e6f.cjs`) of the bundle this file was bundled into. `shareAs`:
 * the package (e.g. 'tsyringe') whose require.cache entry the script's module becomes (see loadVendorFile).
 */
export function loadVendor(name: string, shareAs?: string): unknown {
  const bundleDir = fileURLToPath(new URL('../..', import.meta.url));
  const real = shareAs === undefined ? undefined : createRequire(import.meta.url).resolve(shareAs);
  return loadVendorFile(path.join(bundleDir, VENDOR_DIR, name), process.env, real);
}

/** How each vendor script of this process was loaded (VMM_DEBUG, tests). */
export const vendorLoads = (): VendorLoad[] => [...loads.values()];

/**
 * Writes the code cache of every vendor script loaded without a usable one (with the functions compiled so far);
 * returns how many were written. Failures (a read-only folder) are skipped.
 */
export function saveVendorCaches(): number {
  let n = 0;
  for (const [file, script] of unsaved) {
    unsaved.delete(file);
    try {
      if (writeCache(cacheFileOf(file), cacheKey(file), script.createCachedData())) n++;
    } catch {
      /* createCachedData failed: no cache this time */
    }
  }
  return n;
}
