import type { Command } from 'commander';
import { discoverPlugins, type DiscoveredPlugin } from '../plugin/discovery.js';
import { loadPluginModule } from '../plugin/load-module.js';
import { VmConfigSchema } from '../config/schema.js';
import { jsonSchemaOf } from './schema-doc.js';
import { findPlugin } from './plugins-command.js';

/** A plugin's config schema as JSON Schema without its own `$schema` (it is nested); {} when it takes anything. */
async function pluginConfigSchema(p: DiscoveredPlugin): Promise<Record<string, unknown> | undefined> {
  const module = await loadPluginModule(p);
  if (!module.configSchema) return undefined;
  const { $schema: _drop, ...rest } = jsonSchemaOf(module.configSchema);
  return rest;
}

/**
 * A JSON Schema of the whole VM config for editors (yaml-language-server, VS Code): the core sections, and each
 * `plugins:` entry checked against the discovered plugin it names (its config block by that plugin's schema).
 * Plugins whose module does not load are left out, with a warning.
 */
export async function vmConfigJsonSchema(
  found: ReadonlyMap<string, DiscoveredPlugin>,
  warn: (line: string) => void = () => {},
): Promise<Record<string, unknown>> {
  const root = jsonSchemaOf(VmConfigSchema) as {
    properties: { plugins: { items: Record<string, unknown> } };
    [k: string]: unknown;
  };
  const entries: Record<string, unknown>[] = [];
  for (const p of [...found.values()].sort((a, b) => a.manifest.name.localeCompare(b.manifest.name))) {
    let config: Record<string, unknown> | undefined;
    try {
      config = await pluginConfigSchema(p);
    } catch (err) {
      warn(`plugin '${p.manifest.name}' left out of the schema: ${(err as Error).message}`);
      continue;
    }
    entries.push({
      type: 'object',
      description: p.manifest.description,
      properties: { name: { const: p.manifest.name }, id: { type: 'string' }, ...(config ? { config } : {}) },
      required: ['name'],
      additionalProperties: false,
    });
  }
  entries.push({
    type: 'object',
    description: 'a plugin outside the repository, by folder (relative to the YAML file)',
    properties: { path: { type: 'string' }, id: { type: 'string' }, config: {} },
    required: ['path'],
    additionalProperties: false,
  });
  root.properties.plugins.items = { anyOf: entries };
  root.title = 'tsvmm VM config';
  return root;
}

/** Adds `vmm schema [--plugin NAME]`. */
export function addSchemaCommand(program: Command, examples: string): void {
  program
    .command('schema')
    .description('write a JSON Schema of the VM config (plugin configs included) for editors, on stdout')
    .option('--plugin <name>', "only this plugin's config block")
    .addHelpText('after', examples)
    .action(async (opts: { plugin?: string }) => {
      const found = discoverPlugins({ onBroken: (e) => process.stderr.write(`vmm: warning: ${e.message}\n`) });
      const warn = (l: string) => process.stderr.write(`vmm: warning: ${l}\n`);
      const out = opts.plugin
        ? ((await pluginConfigSchema(findPlugin(opts.plugin, found))) ?? {})
        : await vmConfigJsonSchema(found, warn);
      process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    });
}
