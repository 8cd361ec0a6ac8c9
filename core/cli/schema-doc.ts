import { z } from 'zod';

/** A JSON Schema node, as zod's toJSONSchema writes it (the parts read here). */
interface Js {
  type?: string | string[];
  properties?: Record<string, Js>;
  required?: string[];
  items?: Js;
  enum?: unknown[];
  const?: unknown;
  anyOf?: Js[];
  oneOf?: Js[];
  default?: unknown;
  description?: string;
  minimum?: number;
  maximum?: number;
  pattern?: string;
  additionalProperties?: unknown;
  $schema?: string;
}

/** One config key of a schema, for `vmm plugins NAME`. */
export interface SchemaRow {
  readonly key: string;
  readonly type: string;
  readonly required: boolean;
  readonly default?: string;
  readonly description?: string;
}

/** A zod schema as JSON Schema (the input side: what YAML may say; bigint and transforms become 'any'). */
export function jsonSchemaOf(schema: z.ZodType): Record<string, unknown> {
  return z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
}

/** A short type for a JSON Schema node: 'integer 1..1024', "'COM1' | 'COM2'", 'string | integer'. */
function typeOf(s: Js): string {
  if (s.const !== undefined) return JSON.stringify(s.const);
  if (s.enum) return s.enum.map((v) => JSON.stringify(v)).join(' | ');
  const alts = s.anyOf ?? s.oneOf;
  if (alts) return [...new Set(alts.map(typeOf))].join(' | ');
  let t = Array.isArray(s.type) ? s.type.join(' | ') : (s.type ?? 'any');
  if (t === 'array' && s.items) t = `list of ${typeOf(s.items)}`;
  if (s.minimum !== undefined || s.maximum !== undefined) {
    const max = s.maximum !== undefined && s.maximum < Number.MAX_SAFE_INTEGER ? String(s.maximum) : '';
    t += ` ${s.minimum ?? ''}..${max}`;
  }
  if (s.pattern && t === 'string') t += ` /${s.pattern}/`;
  return t;
}

/** The discriminating `const` of a union member (`kind: 'file'`), for its rows' key prefix. */
function tagOf(s: Js): string | undefined {
  for (const [k, p] of Object.entries(s.properties ?? {})) if (p.const !== undefined) return `${k}=${String(p.const)}`;
  return undefined;
}

/** Every key of a JSON Schema object, nested keys dotted, union members' keys tagged: `console{kind=file}.path`. */
export function schemaRows(schema: Record<string, unknown>, prefix = ''): SchemaRow[] {
  const out: SchemaRow[] = [];
  const walk = (s: Js, at: string, required: boolean): void => {
    const alts = (s.anyOf ?? s.oneOf ?? []).filter((a) => a.properties);
    if (at) {
      out.push({
        key: at,
        type: s.properties && !alts.length ? 'object' : typeOf(s),
        required,
        default: s.default === undefined ? undefined : JSON.stringify(s.default),
        description: s.description,
      });
    }
    for (const [k, p] of Object.entries(s.properties ?? {})) {
      walk(p, at ? `${at}.${k}` : k, (s.required ?? []).includes(k));
    }
    for (const a of alts) {
      const tag = tagOf(a);
      for (const [k, p] of Object.entries(a.properties ?? {})) {
        if (p.const !== undefined) continue;
        walk(p, `${at}${tag ? `{${tag}}` : ''}.${k}`, (a.required ?? []).includes(k));
      }
    }
  };
  walk(schema as Js, prefix, false);
  return out;
}

/** Rows as an aligned text table: key, type, default, description. */
export function formatRows(rows: readonly SchemaRow[]): string {
  if (rows.length === 0) return '  (no config keys)\n';
  const kw = Math.min(40, Math.max(...rows.map((r) => r.key.length)));
  return rows
    .map((r) => {
      const bits = [r.type, r.required ? 'required' : r.default !== undefined ? `default ${r.default}` : 'optional'];
      const head = `  ${r.key.padEnd(kw)}  ${bits.join(', ')}`;
      return r.description ? `${head}\n  ${' '.repeat(kw)}    ${r.description}` : head;
    })
    .join('\n')
    .concat('\n');
}
