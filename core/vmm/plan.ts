import * as path from 'node:path';
import { Tokens } from '../tokens.js';
import type { VmConfig } from '../config/schema.js';
import { ConfigSource } from '../config/source.js';
import { validateVmConfig } from '../config/load.js';
import type { PluginModule } from '../plugin/plugin.js';
import { discoverPlugins, readPluginAt, type DiscoveredPlugin, type DiscoveryOptions } from '../plugin/discovery.js';
import { orderPlugins, type PluginInstance } from '../plugin/order.js';
import { loadPluginModule } from '../plugin/load-module.js';
import { PluginError } from '../plugin/errors.js';
import { markStartup } from './timings.js';

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
}

function sourceOf(input: ConfigInput): ConfigSource {
  if (input instanceof ConfigSource) return input;
  if (typeof input === 'string') return ConfigSource.fromFile(input);
  // An object config: serialise through YAML so errors still carry key paths.
  return ConfigSource.fromObject(input.config, input.file ?? '<config>', input.baseDir);
}

/**
 * Plans a VM without starting anything: validates the config, discovers, orders and loads the listed plugins and
 * validates each plugin's config (what `vmm validate` reports). Throws ConfigError or PluginError.
 */
export async function planVm(input: ConfigInput, opts: PlanOptions = {}): Promise<VmPlan> {
  const source = sourceOf(input);
  const config = validateVmConfig(source);
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
  const wanted = config.plugins.filter((e) => e.path === undefined && opts.replacePlugins?.[e.name!] === undefined);
  if (wanted.some((e) => !discovered.has(e.name!))) allDiscovered();
  markStartup(`plugins discovered (${discovered.size}${complete ? '' : ' in the repository'})`);

  const instances: PluginInstance[] = [];
  const ids = new Map<string, number>();
  config.plugins.forEach((entry, index) => {
    let plugin: DiscoveredPlugin | undefined;
    if (entry.path !== undefined) {
      const dir = path.resolve(baseDir, entry.path);
      try {
        plugin = readPluginAt(dir, 'path');
      } catch (err) {
        throw source.error(['plugins', index, 'path'], (err as Error).message);
      }
    } else if (opts.replacePlugins?.[entry.name!] !== undefined) {
      plugin = readPluginAt(path.resolve(opts.replacePlugins[entry.name!]), 'path');
    } else {
      plugin = discovered.get(entry.name!);
      if (!plugin) {
        const known = [...allDiscovered().keys()].sort().join(', ') || 'none';
        throw source.error(['plugins', index, 'name'], `unknown plugin '${entry.name}' (discovered: ${known})`);
      }
    }
    const instance = entry.id ?? plugin.manifest.name;
    if (ids.has(instance)) {
      throw source.error(
        ['plugins', index],
        `plugin instance '${instance}' is listed twice (also plugins[${ids.get(instance)}]); give each an 'id'`,
      );
    }
    ids.set(instance, index);
    instances.push({ instance, plugin, index });
  });

  const hint = (token: string): string | undefined => {
    const by = [...allDiscovered().values()]
      .filter((d) => d.manifest.provides.includes(token))
      .map((d) => d.manifest.name);
    return by.length ? `discovered plugins providing it: ${by.join(', ')}` : undefined;
  };
  const ordered = orderPlugins(instances, { coreTokens: CORE_TOKENS, cardinality: tokenCardinality, hint });

  const plugins: PlannedPlugin[] = [];
  for (const inst of ordered) {
    let module: PluginModule;
    try {
      module = await loadPluginModule(inst.plugin);
    } catch (err) {
      throw err instanceof PluginError ? source.error(['plugins', inst.index], err.message) : err;
    }
    const raw = config.plugins[inst.index].config;
    let cfg: unknown = raw;
    if (module.configSchema) {
      cfg = source.validate(module.configSchema, raw ?? {}, ['plugins', inst.index, 'config']);
    } else if (raw !== undefined) {
      throw source.error(['plugins', inst.index, 'config'], `plugin '${inst.plugin.manifest.name}' takes no config`);
    }
    plugins.push({ ...inst, module, config: cfg });
    markStartup(`plugin loaded: ${inst.instance}`);
  }
  return {
    config,
    source,
    baseDir,
    plugins,
    get discovered() {
      return allDiscovered();
    },
  };
}
