import * as fs from 'node:fs';
import { pathToFileURL } from 'node:url';
import type { PluginModule } from './plugin.js';
import type { DiscoveredPlugin } from './discovery.js';
import { PluginError } from './errors.js';

const isPluginModule = (m: unknown): m is PluginModule =>
  typeof m === 'object' &&
  m !== null &&
  (typeof (m as PluginModule).register === 'function' || typeof (m as PluginModule).main === 'function') &&
  ['register', 'main'].every(
    (k) => (m as Record<string, unknown>)[k] === undefined || typeof (m as Record<string, unknown>)[k] === 'function',
  );

/** Imports a plugin's entry; its default export (or named `plugin`) must be a PluginModule. */
export async function loadPluginModule(p: DiscoveredPlugin): Promise<PluginModule> {
  const name = p.manifest.name;
  if (!fs.existsSync(p.entryPath)) {
    throw new PluginError(
      'Entry',
      `plugin '${name}': entry ${p.entryPath} does not exist (is the project built? run npm run build)`,
      { plugin: name, entry: p.entryPath },
    );
  }
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(p.entryPath).href)) as Record<string, unknown>;
  } catch (err) {
    throw new PluginError(
      'Entry',
      `plugin '${name}': cannot load ${p.entryPath}: ${(err as Error).message}`,
      { plugin: name, entry: p.entryPath },
      { cause: err },
    );
  }
  const candidate = mod.default ?? mod.plugin;
  if (!isPluginModule(candidate)) {
    throw new PluginError(
      'Entry',
      `plugin '${name}': ${p.entryPath} does not export a plugin (default export or 'plugin' with a register() function and/or a main class)`,
      { plugin: name, entry: p.entryPath },
    );
  }
  return candidate;
}

/** Imports a plugin's CLI module and returns its registerCommands, if any. */
export async function loadPluginCli(p: DiscoveredPlugin): Promise<((program: unknown) => void) | undefined> {
  if (!p.cliPath) return undefined;
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(p.cliPath).href)) as Record<string, unknown>;
  } catch (err) {
    throw new PluginError(
      'Entry',
      `plugin '${p.manifest.name}': cannot load CLI module ${p.cliPath}: ${(err as Error).message}`,
      { plugin: p.manifest.name, cli: p.cliPath },
      { cause: err },
    );
  }
  const fn = mod.registerCommands ?? (mod.default as Record<string, unknown> | undefined)?.registerCommands;
  if (typeof fn !== 'function') {
    throw new PluginError(
      'Entry',
      `plugin '${p.manifest.name}': ${p.cliPath} does not export registerCommands(program)`,
      { plugin: p.manifest.name },
    );
  }
  return fn as (program: unknown) => void;
}
