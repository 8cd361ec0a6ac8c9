import * as path from 'node:path';
import type { Command } from 'commander';
import { discoverPlugins, readPluginAt, type DiscoveredPlugin } from '../plugin/discovery.js';
import { loadPluginModule } from '../plugin/load-module.js';
import { ConfigSource } from '../config/source.js';
import { VmConfigSchema } from '../config/schema.js';
import { didYouMean } from '../config/suggest.js';
import { PluginError } from '../plugin/errors.js';
import { formatRows, jsonSchemaOf, schemaRows } from './schema-doc.js';

/** One plugin in `vmm plugins`' list. */
export function describePlugin(p: DiscoveredPlugin): string {
  const m = p.manifest;
  const list = (xs: readonly string[] | undefined) => (xs && xs.length ? xs.join(', ') : '-');
  const lines = [
    `${m.name} ${m.version} [${p.source}]${m.description ? ` — ${m.description}` : ''}`,
    `    provides: ${list(m.provides)}`,
    `    requires: ${list(m.requires)}`,
  ];
  if (m.optional?.length) lines.push(`    optional: ${list(m.optional)}`);
  if (m.uses?.length) lines.push(`    uses: ${list(m.uses)}`);
  lines.push(`    manifest: ${p.manifestPath}`);
  return `${lines.join('\n')}\n`;
}

/** The plugin named `name` among those discovered, or a PluginError with a "did you mean". */
export function findPlugin(name: string, found: ReadonlyMap<string, DiscoveredPlugin>): DiscoveredPlugin {
  const p = found.get(name);
  if (p) return p;
  const names = [...found.keys()].sort();
  throw new PluginError(
    'Unknown',
    `unknown plugin '${name}'${didYouMean(name, names)} (discovered: ${names.join(', ')})`,
  );
}

/** `vmm plugins NAME`: the manifest, then every config key with its type, default and description. */
export async function pluginDetail(p: DiscoveredPlugin): Promise<string> {
  const module = await loadPluginModule(p);
  const config = module.configSchema
    ? formatRows(schemaRows(jsonSchemaOf(module.configSchema)))
    : '  (takes no config)\n';
  const hooks = (['hostCheck', 'files', 'validate', 'names'] as const).filter((h) => module[h] !== undefined);
  const example = `  - name: ${p.manifest.name}\n    config: { ... }   # the keys above; paths are relative to the YAML file\n`;
  return (
    `${describePlugin(p)}` +
    (hooks.length ? `    checks before start: ${hooks.join(', ')}\n` : '') +
    `\nconfig (the plugins: entry's 'config:' block):\n${config}\nin a VM config:\n${example}`
  );
}

/** Adds `vmm plugins [NAME]`. */
export function addPluginsCommand(program: Command, examples: string): void {
  program
    .command('plugins')
    .description("list discovered plugins, or show one plugin's config keys (types, defaults, descriptions)")
    .argument('[name]', 'a plugin to describe')
    .option('-c, --config <file>', 'also list plugins named by path in this config')
    .option('--json', 'machine-readable output (a plugin: its manifest and the JSON Schema of its config)')
    .addHelpText('after', examples)
    .action(async (name: string | undefined, opts: { config?: string; json?: boolean }) => {
      const broken: string[] = [];
      const found = new Map(discoverPlugins({ onBroken: (e) => broken.push(e.message) }));
      if (opts.config) {
        const source = ConfigSource.fromFile(opts.config);
        const cfg = source.validate(VmConfigSchema, source.value);
        cfg.plugins.forEach((e, i) => {
          if (e.path === undefined) return;
          try {
            const p = readPluginAt(path.resolve(source.baseDir, e.path), 'path');
            if (!found.has(p.manifest.name)) found.set(p.manifest.name, p);
          } catch (err) {
            throw source.error(['plugins', i, 'path'], (err as Error).message);
          }
        });
      }
      if (name !== undefined) {
        const p = findPlugin(name, found);
        if (opts.json) {
          const module = await loadPluginModule(p);
          const config = module.configSchema ? jsonSchemaOf(module.configSchema) : null;
          process.stdout.write(`${JSON.stringify({ ...p.manifest, manifestPath: p.manifestPath, config }, null, 2)}\n`);
        } else process.stdout.write(await pluginDetail(p));
      } else if (opts.json) {
        const list = [...found.values()].map((p) => ({
          ...p.manifest,
          source: p.source,
          manifestPath: p.manifestPath,
        }));
        process.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
      } else {
        for (const p of found.values()) process.stdout.write(describePlugin(p));
        if (found.size === 0) process.stdout.write('no plugins found\n');
      }
      for (const b of broken) process.stderr.write(`vmm: warning: ${b}\n`);
    });
}
