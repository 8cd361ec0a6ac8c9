import { parse } from 'yaml';
import { ConfigError } from './errors.js';
import type { ConfigSource, KeyPath } from './source.js';
import { didYouMean } from './suggest.js';

/** One `--set key=value`: where in the config, the value (a YAML scalar), and the expression as typed. */
export interface Override {
  readonly path: KeyPath;
  readonly value: unknown;
  readonly expr: string;
}

/** The config's own top-level sections; any other first key names a plugin instance. */
const SECTIONS = new Set(['machine', 'boot', 'virtio', 'plugins']);

/** 'a.b[2].c' as ['a', 'b', 2, 'c']. */
function splitKey(key: string, expr: string): (string | number)[] {
  const out: (string | number)[] = [];
  for (const part of key.split('.')) {
    const m = /^([^[\]]*)((?:\[\d+\])*)$/.exec(part);
    if (!m || (m[1] === '' && m[2] === ''))
      throw new ConfigError('Invalid', `--set ${expr}: '${key}' is not a key path like machine.memory`, {
        file: '--set',
      });
    if (m[1] !== '') out.push(m[1]);
    for (const idx of m[2].matchAll(/\[(\d+)\]/g)) out.push(Number(idx[1]));
  }
  return out;
}

/**
 * Parses `key=value` against the config it will change: `machine.memory=2G`, `boot.cmdline=...`, or
 * `<instance>.<key>...` for a plugin's config (`serial.console.kind=file`, `disk1.readOnly=true`: the instance is a
 * `plugins:` entry's `id`, else its `name`). The value is read as a YAML scalar (`true`, `4`, `0x10`, `512M`).
 */
export function parseOverride(expr: string, source: ConfigSource): Override {
  const eq = expr.indexOf('=');
  if (eq <= 0) throw new ConfigError('Invalid', `--set ${expr}: expected key=value`, { file: '--set' });
  const keys = splitKey(expr.slice(0, eq).trim(), expr);
  let value: unknown;
  try {
    value = parse(expr.slice(eq + 1));
  } catch (err) {
    throw new ConfigError('Invalid', `--set ${expr}: the value is not YAML: ${(err as Error).message}`, {
      file: '--set',
    });
  }
  const head = keys[0];
  if (typeof head === 'string' && !SECTIONS.has(head)) {
    const entries = ((source.value as { plugins?: unknown }).plugins ?? []) as { id?: unknown; name?: unknown }[];
    const names = Array.isArray(entries) ? entries.map((e) => String(e?.id ?? e?.name ?? '')) : [];
    const index = names.indexOf(head);
    if (index < 0) {
      throw new ConfigError(
        'Invalid',
        `--set ${expr}: '${head}' is neither a config section (${[...SECTIONS].join(', ')}) nor a listed plugin ` +
          `instance${didYouMean(head, [...SECTIONS, ...names])} (instances: ${names.join(', ') || 'none'})`,
        { file: '--set' },
      );
    }
    return { path: ['plugins', index, 'config', ...keys.slice(1)], value, expr };
  }
  return { path: keys, value, expr };
}

/** The config with every `--set` applied, in order (a later one wins). */
export function applyOverrides(source: ConfigSource, exprs: readonly string[]): ConfigSource {
  if (exprs.length === 0) return source;
  return source.withOverrides(exprs.map((e) => parseOverride(e, source)));
}
