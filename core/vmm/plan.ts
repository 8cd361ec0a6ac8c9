import * as path from 'node:path';
import { Tokens } from '../tokens.js';
import type { PluginEntry, VmConfig } from '../config/schema.js';
import { ConfigSource } from '../config/source.js';
import { checkVmConfig, type CheckedVmConfig } from '../config/load.js';
import type { HostMemory } from '../config/host-memory.js';
import { ConfigError } from '../config/errors.js';
import { ConfigProblems } from '../config/problems.js';
import { fileProblem } from '../config/files.js';
import { didYouMean } from '../config/suggest.js';
import { RegisteredHostFiles, type HostFiles } from '../host/host-files.js';
import type { PlanContext, PluginModule, PluginProblem } from '../plugin/plugin.js';
import { discoverPlugins, readPluginAt, type DiscoveredPlugin, type DiscoveryOptions } from '../plugin/discovery.js';
import { orderPlugins, type PluginInstance } from '../plugin/order.js';
import { loadPluginModule } from '../plugin/load-module.js';
import { PluginError } from '../plugin/errors.js';
import { markStartup } from './timings.js';
import { withSharedMemory } from './shared-memory.js';

/** Tokens the kernel registers in every VM container before plugins run. */
export const CORE_TOKENS: ReadonlySet<string> = new Set([
  'VmConfig',
  'Logger',
  'Lifecycle',
  'EventLoop',
  'EventFdFactory',
  'GuestMemoryFactory',
  'DeviceRegistry',
  'StateRegistry',
  'Bus',
  'Resources',
  'Interrupts',
  'KernelCmdline',
  'HostFiles',
]);

/**
 * Whether a token (by manifest name) has one provider per VM or collects several; tokens core does not know (a
 * third-party plugin's own) count as 'multiple'.
 */
export const tokenCardinality = (t: string): 'singular' | 'multiple' =>
  (Tokens as Record<string, { cardinality: 'singular' | 'multiple' }>)[t]?.cardinality ?? 'multiple';

/** A listed plugin, loaded, with its validated config. */
export interface PlannedPlugin extends PluginInstance {
  readonly module: PluginModule;
  readonly config: unknown;
}

/** Everything `vmm validate` checks, nothing started: config, plugins found, ordered, loaded, their configs valid. */
export interface VmPlan {
  readonly config: VmConfig;
  readonly source: ConfigSource;
  readonly baseDir: string;
  readonly plugins: readonly PlannedPlugin[];
  /** Every discovered plugin (repository and npm); the npm scan runs on first access if planning did not need it. */
  readonly discovered: ReadonlyMap<string, DiscoveredPlugin>;
}

/**
 * A VM config as planVm accepts it: a YAML file path, a plain object (with the folder relative paths start from), or an
 * already parsed source.
 */
export type ConfigInput = string | { config: unknown; baseDir?: string; file?: string } | ConfigSource;

/** How planVm finds plugins: discovery folders, already discovered plugins, and replacements for tests. */
export interface PlanOptions {
  discovery?: DiscoveryOptions;
  /** Already discovered plugins (skips discovery). */
  discovered?: ReadonlyMap<string, DiscoveredPlugin>;
  /** Use the plugin in folder `dir` wherever the config names plugin `name` (tests: swap a backend for a double). */
  replacePlugins?: Readonly<Record<string, string>>;
  /**
   * true: also make the checks before start that `vmm run` and `vmm validate` make: the files the config names
   * (boot files, plugins' `files`) and each plugin's `validate` against the rest of the VM. Default false: only what
   * assembly needs (it then finds a missing file when it opens it).
   */
  checks?: boolean;
  /** Serves `<scheme>:<name>` files (default: the schemes this process registered). */
  hostFiles?: HostFiles;
  /** The host's memory figures (tests; default read from /proc). */
  hostMemory?: HostMemory;
}

function sourceOf(input: ConfigInput): ConfigSource {
  if (input instanceof ConfigSource) return input;
  if (typeof input === 'string') return ConfigSource.fromFile(input);
  // An object config: serialise through YAML so errors still carry key paths.
  return ConfigSource.fromObject(input.config, input.file ?? '<config>', input.baseDir);
}

/**
 * Plans a VM without starting anything: validates the config, discovers, orders and loads the listed plugins,
 * validates each plugin's config, and (with `checks: true`) checks what the VM needs before it starts: the files
 * the config names (boot files, the plugins' `files`), and each plugin's `validate` against the rest of the VM
 * (what `vmm validate` reports). Goes on past a problem to find the others: throws a ConfigError for one problem, a
 * ConfigErrors for several, each pointing into the file.
 */
export async function planVm(input: ConfigInput, opts: PlanOptions = {}): Promise<VmPlan> {
  const source = sourceOf(input);
  const problems = new ConfigProblems();
  const checked = checkVmConfig(source, problems, opts.hostMemory);
  markStartup('config loaded');
  const baseDir = source.baseDir;
  // The repository's plugins first; the node_modules scan (~100 package.json files) only when a
  // name is not found among them or an error message lists what was discovered. In-repo plugins
  // win over npm packages of the same name, so skipping the scan never changes which plugin a
  // name resolves to.
  const repoOnly = opts.discovered === undefined;
  let discovered: ReadonlyMap<string, DiscoveredPlugin> =
    opts.discovered ?? discoverPlugins(repoOnly ? { ...opts.discovery, nodeModules: [] } : opts.discovery);
  let complete = !repoOnly;
  const allDiscovered = (): ReadonlyMap<string, DiscoveredPlugin> => {
    if (!complete) {
      discovered = discoverPlugins(opts.discovery);
      complete = true;
    }
    return discovered;
  };
  const named = (e: PluginEntry | undefined): e is PluginEntry =>
    e !== undefined && e.path === undefined && opts.replacePlugins?.[e.name!] === undefined;
  if (checked.entries.filter(named).some((e) => !discovered.has(e.name!))) allDiscovered();
  markStartup(`plugins discovered (${discovered.size}${complete ? '' : ' in the repository'})`);

  const lookup = (name: string) => discovered.get(name) ?? allDiscovered().get(name);
  const instances = resolveEntries(checked.entries, source, problems, opts, lookup, allDiscovered);
  const hint = (token: string): string | undefined => {
    const by = [...allDiscovered().values()]
      .filter((d) => d.manifest.provides.includes(token))
      .map((d) => d.manifest.name);
    return by.length ? `discovered plugins providing it: ${by.join(', ')}` : undefined;
  };
  const ordered = orderPlugins(instances, {
    coreTokens: CORE_TOKENS,
    cardinality: tokenCardinality,
    hint,
    onError: (err, at) => problems.add(() => source.error(['plugins', at.index], err.message, err)),
  });

  const plugins: PlannedPlugin[] = [];
  for (const inst of ordered) {
    let module: PluginModule;
    try {
      module = await loadPluginModule(inst.plugin);
    } catch (err) {
      if (!(err instanceof PluginError)) throw err;
      problems.add(source.error(['plugins', inst.index], err.message, err));
      continue;
    }
    const raw = checked.entries[inst.index]!.config;
    let cfg: unknown = raw;
    if (module.configSchema) {
      cfg = source.check(module.configSchema, raw ?? {}, ['plugins', inst.index, 'config'], problems);
      if (cfg === undefined) continue;
    } else if (raw !== undefined) {
      problems.add(
        source.error(['plugins', inst.index, 'config'], `plugin '${inst.plugin.manifest.name}' takes no config`),
      );
      continue;
    }
    plugins.push({ ...inst, module, config: cfg });
    markStartup(`plugin loaded: ${inst.instance}`);
  }
  // vhost-user and the like need guest RAM another process can map: memfd unless the config says otherwise
  const config = checked.config && withSharedMemory(checked.config, source, instances, problems);
  if (opts.checks === true) {
    const chosen = config ? { ...checked, config, machine: config.machine } : checked;
    await checkBeforeStart(chosen, plugins, source, problems, opts.hostFiles ?? new RegisteredHostFiles());
  }
  problems.throwIfAny();
  return {
    config: config!,
    source,
    baseDir,
    plugins,
    get discovered() {
      return allDiscovered();
    },
  };
}

/** Finds the plugin of each valid `plugins:` entry (by name, path or replacement); problems are recorded. */
function resolveEntries(
  entries: readonly (PluginEntry | undefined)[],
  source: ConfigSource,
  problems: ConfigProblems,
  opts: PlanOptions,
  lookup: (name: string) => DiscoveredPlugin | undefined,
  allDiscovered: () => ReadonlyMap<string, DiscoveredPlugin>,
): PluginInstance[] {
  const instances: PluginInstance[] = [];
  const ids = new Map<string, number>();
  entries.forEach((entry, index) => {
    if (!entry) return;
    let plugin: DiscoveredPlugin | undefined;
    try {
      if (entry.path !== undefined) {
        try {
          plugin = readPluginAt(path.resolve(source.baseDir, entry.path), 'path');
        } catch (err) {
          throw source.error(['plugins', index, 'path'], (err as Error).message);
        }
      } else if (opts.replacePlugins?.[entry.name!] !== undefined) {
        plugin = readPluginAt(path.resolve(opts.replacePlugins[entry.name!]), 'path');
      } else {
        plugin = lookup(entry.name!);
        if (!plugin) {
          const names = [...allDiscovered().keys()].sort();
          throw source.error(
            ['plugins', index, 'name'],
            `unknown plugin '${entry.name}'${didYouMean(entry.name!, names)} (discovered: ${names.join(', ') || 'none'})`,
          );
        }
      }
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      problems.add(err);
      return;
    }
    const instance = entry.id ?? plugin.manifest.name;
    if (ids.has(instance)) {
      const first = ids.get(instance);
      problems.add(() =>
        source.error(
          ['plugins', index],
          `plugin instance '${instance}' is listed twice (also plugins[${first}]); give each an 'id'`,
        ),
      );
      return;
    }
    ids.set(instance, index);
    instances.push({ instance, plugin, index });
  });
  return instances;
}

/**
 * What `vmm run` would otherwise find only while assembling: the boot files and every file a plugin names exist,
 * are regular files and readable; each plugin's own validate against the rest of the VM.
 */
async function checkBeforeStart(
  checked: CheckedVmConfig,
  plugins: readonly PlannedPlugin[],
  source: ConfigSource,
  problems: ConfigProblems,
  hostFiles: HostFiles,
): Promise<void> {
  const baseDir = source.baseDir;
  for (const key of ['kernel', 'initramfs'] as const) {
    const spec = checked.boot?.[key];
    if (spec === undefined) continue;
    const why = await fileProblem(spec, baseDir, { what: 'boot file' }, hostFiles);
    if (why) problems.add(source.error(['boot', key], why));
  }
  for (const p of plugins) {
    const at = ['plugins', p.index, 'config'];
    for (const f of p.module.files?.(p.config) ?? []) {
      const why = await fileProblem(f.path, baseDir, f, hostFiles);
      if (why) problems.add(source.error([...at, ...f.key], why));
    }
  }
  const config = checked.config;
  if (!config) return; // the plugins' own checks look at the whole VM: only once it is valid
  const ctx = (instance: string): PlanContext => ({
    vm: config,
    baseDir,
    instance,
    providers: (token) => plugins.filter((p) => p.plugin.manifest.provides.includes(token)).map((p) => p.instance),
    names: (token) => {
      const out: string[] = [];
      for (const p of plugins.filter((q) => q.plugin.manifest.provides.includes(token))) {
        const n = p.module.names?.(p.config)?.[token];
        if (n === undefined) return undefined;
        out.push(...n);
      }
      return out;
    },
  });
  for (const p of plugins) {
    let found: readonly PluginProblem[] | undefined;
    try {
      found = p.module.validate?.(p.config, ctx(p.instance));
    } catch (err) {
      found = [{ message: `plugin '${p.instance}' failed to check its config: ${(err as Error)?.message ?? err}` }];
    }
    for (const f of found ?? []) {
      const key = f.vmKey ?? ['plugins', p.index, ...(f.key ? ['config', ...f.key] : [])];
      problems.add(source.error(key, f.vmKey ? `${f.message} (plugin '${p.instance}')` : f.message));
    }
  }
}
