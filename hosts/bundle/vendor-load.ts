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
import { createRequire } from 'node:module';
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
 */
export function loadVendorFile(file: string, env: NodeJS.ProcessEnv = process.env): unknown {
  if (loadedModules.has(file)) return loadedModules.get(file);
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
  const mod = { exports: {} as unknown };
  const wrapper = script.runInThisContext() as Wrapper;
  wrapper.call(mod.exports, mod.exports, createRequire(file), mod, file, path.dirname(file));
  loadedModules.set(file, mod.exports);
  return mod.exports;
}

/** Loads the vendor script `name` (e.g. `zod-1a2b3c4d5e6f.cjs`) of the bundle this file was bundled into. */
export function loadVendor(name: string): unknown {
  return loadVendorFile(path.join(fileURLToPath(new URL('../..', import.meta.url)), VENDOR_DIR, name));
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
