/**
 * Builds the start-up bundle of a compiled tree: `node <build>/hosts/bundle/build.js` writes
 * <build>/bundle/ with esbuild (code splitting, ESM) from the compiled JavaScript, so the
 * decorators and their metadata are tsc's. Why: in the nested sandbox (QEMU TCG) Node's module
 * loader costs ~30 ms per file and `vmm run` loads ~430 files (zod alone ~95) before it reads its
 * config; the bundle loads a handful.
 *
 * Layout: the bundle mirrors the build folder for its entry points (hosts/cli/run-main.js and each
 * repository plugin's entry, e.g. plugins/x86/plugin.js), shared code goes to core/chunks/, two
 * levels deep like core/plugin/locations.js, which finds the build folder from its own URL: so
 * discovery maps manifests to the bundle's plugin entries unchanged, and core singletons (startup
 * timings, the root container) exist once. reflect-metadata (a global polyfill) and native packages
 * (koffi) stay outside and are loaded with require(), which also spares Node's CJS export lexer.
 * The big packages and tsyringe become cached vendor scripts (vendor-load.ts); tsyringe's module is
 * registered in require.cache at its real path, so plugins outside the bundle share its instance. A
 * file that starts a worker from `new URL('./x.js', import.meta.url)` gets x.js bundled (standalone)
 * beside every output that holds it.
 *
 * esbuild is not a dependency of the project: install it as a devDependency, or point
 * TSVMM_ESBUILD at its package folder (e.g. one `npx --yes esbuild@0.25.12` fetched).
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { BUNDLE_DIR, CLI_ENTRY } from './select.js';
import { fileSig, repoManifests, STAMP_FILE, STAMP_VERSION, type BundleStamp, type FileSig } from './stamp.js';
import { BundleError } from './errors.js';
import { VENDOR_DIR } from './vendor-load.js';

/** The part of esbuild's API used here. */
interface EsbuildPlugin {
  name: string;
  setup(b: { onResolve: EsbuildHook<{ path: string; namespace: string }>; onLoad: EsbuildHook<EsbuildLoaded> }): void;
}
/** esbuild's onResolve/onLoad: a filter (and namespace) and a callback given the module's path. */
type EsbuildHook<R> = (options: { filter: RegExp; namespace?: string }, callback: (a: { path: string }) => R) => void;
interface EsbuildLoaded {
  contents: string;
  loader: string;
  resolveDir?: string;
}
interface Metafile {
  inputs: Record<string, { bytes: number }>;
  outputs: Record<
    string,
    { inputs: Record<string, unknown>; entryPoint?: string; imports?: { path: string; kind: string }[] }
  >;
}
interface Esbuild {
  build(
    o: Record<string, unknown>,
  ): Promise<{ metafile?: Metafile; warnings: unknown[]; outputFiles?: { contents: Uint8Array }[] }>;
}

/** Loaded with require() from the chunk that uses them, never inlined (see the header). */
export const REQUIRED_EXTERNALS = ['reflect-metadata', 'koffi'] as const;

/**
 * Packages built into one CommonJS file each (<bundle>/vendor/<name>-<hash>.cjs) and loaded through vendor-load.ts
 * with V8's code cache: most of the source a start compiles, and tsyringe's ~35 files.
 */
export const CACHED_VENDORS = ['zod', 'yaml', 'commander', 'pino', 'tsyringe'] as const;

/**
 * Cached vendors whose one instance plugins outside the bundle must share (tsyringe's decorators and container keep
 * their state per copy): the script's module is put in require.cache at the package's real entry (vendor-load.ts).
 */
export const SHARED_VENDORS: readonly string[] = ['tsyringe'];

/** Bundled files that find the bundle folder two levels above themselves (checked after the build). */
const TWO_DEEP = [path.join('core', 'plugin', 'locations.js'), path.join('hosts', 'bundle', 'vendor-load.js')];

const BANNER =
  "import { createRequire as __tsvmmCreateRequire } from 'node:module'; const require = __tsvmmCreateRequire(import.meta.url);";
const WORKER_URL = /new URL\(\s*['"]\.\/([\w.-]+\.js)['"]\s*,\s*import\.meta\.url\s*\)/g;

/**
 * What buildBundle bundles: the compiled tree, the repository it came from (for the plugin manifests), the esbuild
 * module to use (loaded by the caller: it is optional), and where the bundle goes.
 */
export interface BuildOptions {
  /** The compiled tree (dist/ or .build/<name>). */
  distDir: string;
  repoRoot: string;
  esbuild: Esbuild;
  /** Default <distDir>/bundle. */
  outDir?: string;
}

/**
 * What buildBundle wrote: the bundle folder, the entry points it bundled, the output files and their total size in
 * bytes.
 */
export interface BuildResult {
  outDir: string;
  entries: string[];
  outputs: string[];
  bytes: number;
}

/**
 * The compiled entry points: the CLI and each repository plugin's entry and CLI module (`cli`: its commands, e.g.
 * `vmm restore`) whose file is built.
 */
export function bundleEntries(distDir: string, repoRoot: string): string[] {
  const entries = [path.join(distDir, CLI_ENTRY)];
  for (const rel of Object.keys(repoManifests(repoRoot))) {
    let manifest: { entry?: unknown; cli?: unknown };
    try {
      manifest = JSON.parse(fs.readFileSync(path.join(repoRoot, rel), 'utf8')) as typeof manifest;
    } catch {
      continue;
    }
    for (const file of [manifest?.entry, manifest?.cli]) {
      if (typeof file !== 'string') continue;
      const js = path.resolve(distDir, path.dirname(rel), file);
      if (fs.existsSync(js) && js.startsWith(distDir + path.sep)) entries.push(js);
    }
  }
  return entries;
}

/** A filter matching exactly one of `names` (module specifiers). */
const exactly = (names: readonly string[]): RegExp =>
  new RegExp(`^(${names.map((n) => n.replace(/[-/\\^$*+?.()|[\]{}]/g, '\\$&')).join('|')})$`);

/** esbuild plugin: `import x from 'koffi'` becomes require('koffi') with the same named exports. */
export function requireExternals(): EsbuildPlugin {
  const req = createRequire(import.meta.url);
  const filter = exactly(REQUIRED_EXTERNALS);
  return {
    name: 'tsvmm-require-externals',
    setup(b) {
      b.onResolve({ filter }, (a: { path: string }) => ({ path: a.path, namespace: 'tsvmm-require' }));
      b.onLoad({ filter: /.*/, namespace: 'tsvmm-require' }, (a: { path: string }) => {
        req('reflect-metadata'); // tsyringe refuses to load without the polyfill
        const mod = req(a.path) as Record<string, unknown>;
        const names = Object.keys(mod).filter((k) => /^[A-Za-z_$][\w$]*$/.test(k) && k !== 'default');
        const lines = [
          "import { createRequire } from 'node:module';",
          `const m = createRequire(import.meta.url)(${JSON.stringify(a.path)});`,
          'export default m;',
          // `export { x as in }`: export names may be reserved words (koffi exports `in`)
          ...names.map((n, i) => `const e${i} = m[${JSON.stringify(n)}]; export { e${i} as ${n} };`),
        ];
        return { contents: lines.join('\n'), loader: 'js', resolveDir: path.dirname(fileURLToPath(import.meta.url)) };
      });
    },
  };
}

/**
 * The compiled files (absolute) in the outputs that `entry`'s output loads statically (its own and the chunks it
 * imports, transitively; dynamic imports excluded): what a process that runs `entry` evaluates before anything else.
 */
export function staticInputs(meta: Metafile, entry: string, distDir: string, abs: (p: string) => string): string[] {
  const outs = Object.entries(meta.outputs);
  const start = outs.find(([, o]) => o.entryPoint !== undefined && abs(o.entryPoint) === entry);
  if (!start) throw new BundleError('Layout', `no bundle output for the entry ${entry}`, { entry });
  const seen = new Set<string>([start[0]]);
  const todo = [start[0]];
  while (todo.length) {
    const o = meta.outputs[todo.pop()!];
    for (const i of o?.imports ?? [])
      if (i.kind === 'import-statement' && meta.outputs[i.path] && !seen.has(i.path)) {
        seen.add(i.path);
        todo.push(i.path);
      }
  }
  const files = new Set<string>();
  for (const out of seen)
    for (const input of Object.keys(meta.outputs[out].inputs)) {
      const file = abs(input);
      if (file.startsWith(distDir + path.sep) && file.endsWith('.js') && file !== entry) files.add(file);
    }
  return [...files].sort();
}

/**
 * esbuild plugin: each of `entries` (absolute paths) also imports each of `shared` (absolute paths), after its own
 * imports. Modules every entry reaches share one chunk. Only for modules the first entry to run (the CLI) loads
 * anyway: they are evaluated then, in their own order, so the added imports change what is in which file, not what
 * runs when.
 */
export function alsoImport(entries: readonly string[], shared: readonly string[]): EsbuildPlugin {
  const tail = shared.map((f) => `import ${JSON.stringify(f)};`).join('\n');
  return {
    name: 'tsvmm-also-import',
    setup(b) {
      b.onLoad({ filter: exactly(entries) }, (a: { path: string }) => ({
        contents: `${fs.readFileSync(a.path, 'utf8')}\n${tail}\n`,
        loader: 'js',
        resolveDir: path.dirname(a.path),
      }));
    },
  };
}

const exportLines = (mod: Record<string, unknown>): string[] => [
  ...('default' in mod ? ['export default m.default;'] : []),
  ...Object.keys(mod)
    .filter((k) => /^[A-Za-z_$][\w$]*$/.test(k) && k !== 'default' && k !== '__esModule')
    // `export { x as in }`: export names may be reserved words
    .map((n, i) => `const v${i} = m[${JSON.stringify(n)}]; export { v${i} as ${n} };`),
];

/**
 * esbuild plugin: `import { z } from 'zod'` (each of CACHED_VENDORS) becomes a module that loads the vendor script
 * `files[name]` through vendor-load.js and re-exports its names (`exportsOf[name]`: the script's export names);
 * a SHARED_VENDORS package is loaded as the instance plugins outside the bundle share.
 */
export function cachedVendors(
  files: ReadonlyMap<string, string>,
  exportsOf: ReadonlyMap<string, string[]>,
  loader: string,
): EsbuildPlugin {
  const filter = exactly([...files.keys()]);
  return {
    name: 'tsvmm-cached-vendors',
    setup(b) {
      b.onResolve({ filter }, (a: { path: string }) => ({ path: a.path, namespace: 'tsvmm-vendor' }));
      b.onLoad({ filter: /.*/, namespace: 'tsvmm-vendor' }, (a: { path: string }) => ({
        contents: [
          `import { loadVendor } from ${JSON.stringify(loader)};`,
          SHARED_VENDORS.includes(a.path)
            ? `const m = loadVendor(${JSON.stringify(files.get(a.path))}, ${JSON.stringify(a.path)});`
            : `const m = loadVendor(${JSON.stringify(files.get(a.path))});`,
          ...(exportsOf.get(a.path) ?? []),
        ].join('\n'),
        loader: 'js',
        resolveDir: path.dirname(loader),
      }));
    },
  };
}

/**
 * Builds each of CACHED_VENDORS into <outDir>/vendor/<name>-<content hash>.cjs (CommonJS, minified like the rest);
 * returns the file names, the export lines of each re-export module, and the package files read.
 */
async function buildVendors(
  esbuild: Esbuild,
  distDir: string,
  outDir: string,
): Promise<{ files: Map<string, string>; exportsOf: Map<string, string[]>; inputs: string[] }> {
  const files = new Map<string, string>();
  const exportsOf = new Map<string, string[]>();
  const inputs: string[] = [];
  const dir = path.join(outDir, VENDOR_DIR);
  fs.mkdirSync(dir, { recursive: true });
  createRequire(import.meta.url)('reflect-metadata'); // tsyringe refuses to load without the polyfill
  for (const name of CACHED_VENDORS) {
    const real = (await import(name)) as Record<string, unknown>;
    const spec = JSON.stringify(name);
    const r = await esbuild.build({
      stdin: {
        contents: `export * from ${spec};${'default' in real ? ` export { default } from ${spec};` : ''}`,
        resolveDir: distDir,
        loader: 'js',
      },
      bundle: true,
      format: 'cjs',
      platform: 'node',
      target: 'node20',
      metafile: true,
      write: false,
      logLevel: 'silent',
      legalComments: 'none',
      ...(process.env.TSVMM_BUNDLE_MINIFY === '0' ? {} : { minifyWhitespace: true, minifySyntax: true }),
      keepNames: true,
    });
    const code = r.outputFiles![0].contents;
    const file = `${name}-${createHash('sha1').update(code).digest('hex').slice(0, 12)}.cjs`;
    fs.writeFileSync(path.join(dir, file), code);
    const mod = createRequire(import.meta.url)(path.join(dir, file)) as Record<string, unknown>;
    files.set(name, file);
    exportsOf.set(name, exportLines(mod));
    inputs.push(...Object.keys(r.metafile!.inputs));
  }
  return { files, exportsOf, inputs };
}

const common = (esb: { plugins: EsbuildPlugin[] }) => ({
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  metafile: true,
  logLevel: 'silent',
  banner: { js: BANNER },
  legalComments: 'none',
  // Minified (names kept: error names and stack frames stay readable): V8 compiles a third less
  // source. Linked source maps chain to tsc's: `node --enable-source-maps` shows .ts locations.
  // keepNames always: esbuild renames clashing top-level names (a second `class PluginError`
  // becomes PluginError2), and errors are told apart by `name` (VmmError sets it from the class).
  ...(process.env.TSVMM_BUNDLE_MINIFY === '0' ? {} : { minifyWhitespace: true, minifySyntax: true }),
  keepNames: true,
  sourcemap: 'linked',
  ...esb,
});

/**
 * Bundles the compiled CLI and repository plugins with esbuild into <distDir>/bundle and writes its stamp (bundle.json)
 * last, so an interrupted build leaves a bundle the launcher considers stale. Checks the result (worker files present,
 * core/plugin/locations.js two levels deep) and throws BundleError otherwise.
 */
export async function buildBundle(o: BuildOptions): Promise<BuildResult> {
  const distDir = path.resolve(o.distDir);
  const outDir = path.resolve(o.outDir ?? path.join(distDir, BUNDLE_DIR));
  const entries = bundleEntries(distDir, o.repoRoot);
  fs.rmSync(outDir, { recursive: true, force: true });
  const vendors = await buildVendors(o.esbuild, distDir, outDir);
  const loader = path.join(distDir, 'hosts', 'bundle', 'vendor-load.js');
  const abs = (p: string) => path.resolve(process.cwd(), p);
  const split = (extra: EsbuildPlugin[]) =>
    o.esbuild.build({
      ...common({ plugins: [...extra, requireExternals(), cachedVendors(vendors.files, vendors.exportsOf, loader)] }),
      entryPoints: entries,
      outbase: distDir,
      outdir: outDir,
      splitting: true,
      chunkNames: 'core/chunks/[name]-[hash]',
    });
  // Pass 1 finds what the CLI loads before any plugin; pass 2 has every entry import that too, so esbuild (which
  // splits by the set of entries reaching a module) puts it in one chunk instead of one per combination of plugins.
  const first = await split([]);
  const cliStatic = staticInputs(first.metafile!, path.join(distDir, CLI_ENTRY), distDir, abs);
  fs.rmSync(path.join(outDir, 'core'), { recursive: true, force: true });
  const r = process.env.TSVMM_BUNDLE_MERGE === '0' ? first : await split([alsoImport(entries, cliStatic)]);
  const meta = r.metafile!;

  // Workers started from a URL beside the file: bundle each one next to every output holding that file.
  const workers = new Map<string, Set<string>>(); // worker source -> output folders
  for (const input of Object.keys(meta.inputs)) {
    const file = abs(input);
    if (!file.startsWith(distDir + path.sep) || !file.endsWith('.js')) continue;
    for (const m of fs.readFileSync(file, 'utf8').matchAll(WORKER_URL)) {
      const src = path.join(path.dirname(file), m[1]);
      if (!fs.existsSync(src))
        throw new BundleError('Worker', `${file} starts ${m[1]}, which does not exist`, { file, worker: src });
      for (const [out, info] of Object.entries(meta.outputs)) {
        if (Object.keys(info.inputs).some((i) => abs(i) === file)) {
          const dirs = workers.get(src) ?? new Set<string>();
          dirs.add(path.dirname(abs(out)));
          workers.set(src, dirs);
        }
      }
    }
  }
  const inputs = new Set([...Object.keys(meta.inputs), ...vendors.inputs].map(abs));
  for (const [src, dirs] of workers) {
    for (const dir of dirs) {
      const w = await o.esbuild.build({
        ...common({ plugins: [requireExternals()] }),
        entryPoints: [src],
        outfile: path.join(dir, path.basename(src)),
      });
      for (const i of Object.keys(w.metafile!.inputs)) inputs.add(abs(i));
    }
  }

  // core/plugin/locations.js and vendor-load.js find the build folder two levels above themselves: check every copy.
  for (const [out, info] of Object.entries(meta.outputs)) {
    const held = TWO_DEEP.find((rel) => Object.keys(info.inputs).some((i) => abs(i) === path.join(distDir, rel)));
    if (held === undefined) continue;
    const depth = path.relative(outDir, path.dirname(abs(out))).split(path.sep).length;
    if (depth !== 2)
      throw new BundleError('Layout', `${out}: holds ${held} ${depth} levels below the bundle (must be 2)`, {
        output: out,
      });
  }

  const stampInputs: Record<string, FileSig> = {};
  const sig = (file: string) => {
    const s = fileSig(file);
    if (!s) throw new BundleError('Input', `${file}: vanished during the build`, { file });
    stampInputs[path.relative(distDir, file)] = s;
  };
  for (const file of inputs) {
    if (file.includes(`${path.sep}node_modules${path.sep}`)) {
      // one package.json per inlined package: installing another version changes it
      const nm = `${path.sep}node_modules${path.sep}`;
      const base = file.slice(0, file.lastIndexOf(nm) + nm.length);
      const rest = file.slice(base.length).split(path.sep);
      sig(path.join(base, ...rest.slice(0, rest[0].startsWith('@') ? 2 : 1), 'package.json'));
    } else if (fs.existsSync(file)) sig(file);
  }
  const outputs: string[] = [];
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else outputs.push(path.relative(outDir, p));
    }
  };
  walk(outDir);
  outputs.sort();
  const stamp: BundleStamp = {
    version: STAMP_VERSION,
    inputs: stampInputs,
    manifests: repoManifests(o.repoRoot),
    outputs,
  };
  fs.writeFileSync(path.join(outDir, STAMP_FILE), `${JSON.stringify(stamp)}\n`);
  const bytes = outputs.reduce((n, f) => n + fs.statSync(path.join(outDir, f)).size, 0);
  return { outDir, entries, outputs, bytes };
}

/** Loads esbuild: TSVMM_ESBUILD (its package folder) or the installed package. */
export async function loadEsbuild(env: NodeJS.ProcessEnv = process.env): Promise<Esbuild> {
  const spec = env.TSVMM_ESBUILD
    ? pathToFileURL(createRequire(path.join(path.resolve(env.TSVMM_ESBUILD), 'x.js')).resolve('esbuild')).href
    : 'esbuild';
  try {
    const m = (await import(spec)) as Esbuild & { default?: Esbuild };
    return typeof m.build === 'function' ? m : m.default!;
  } catch (err) {
    throw new BundleError(
      'NoEsbuild',
      `cannot load esbuild (${(err as Error).message}): add it as a devDependency or set TSVMM_ESBUILD to its package folder`,
      {},
      { cause: err },
    );
  }
}
