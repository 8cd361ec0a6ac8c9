import * as fs from 'node:fs';
import * as path from 'node:path';
import { LineCounter, parseDocument, stringify, isMap, isPair, isScalar, type Document, type Node } from 'yaml';
import type { z } from 'zod';
import { ConfigError, type ConfigErrorData } from './errors.js';
import { findExcessNesting, MAX_CONFIG_DEPTH, MAX_CONFIG_NODES } from './nesting.js';
import { ConfigProblems } from './problems.js';
import { firstDuplicateKey } from './unique-keys.js';
import { objectKeysAt } from './schema-keys.js';
import { didYouMean } from './suggest.js';

/** Hostile input guard: configs are small; refuse huge files instead of parsing them. */
export const MAX_CONFIG_BYTES = 1 << 20;

/** A path into the YAML document: map keys and list indexes, outermost first (['plugins', 2, 'config', 'path']). */
export type KeyPath = readonly (string | number)[];

/** A parsed YAML document that remembers where every node came from. */
export class ConfigSource {
  private constructor(
    readonly file: string,
    readonly doc: Document,
    readonly lines: LineCounter,
    readonly value: unknown,
  ) {}

  private baseOverride?: string;

  /** Directory relative paths in the config are resolved against. */
  get baseDir(): string {
    return this.baseOverride ?? path.dirname(path.resolve(this.file));
  }

  /** A config given as an object: serialised to YAML so errors still name keys and positions. */
  static fromObject(value: unknown, file = '<config>', baseDir?: string): ConfigSource {
    const text = stringify(
      value ?? {},
      (_k, v) =>
        (typeof v === 'bigint' ? (v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : String(v)) : v) as unknown,
    );
    const s = ConfigSource.fromText(text, file);
    s.baseOverride = baseDir ?? process.cwd();
    return s;
  }

  static fromFile(file: string): ConfigSource {
    let text: string;
    try {
      const st = fs.statSync(file);
      if (!st.isFile()) throw new Error('not a regular file');
      if (st.size > MAX_CONFIG_BYTES) throw new Error(`larger than ${MAX_CONFIG_BYTES} bytes`);
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError(
        'Read',
        `cannot read config: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
        { file },
        { cause: err },
      );
    }
    return ConfigSource.fromText(text, file);
  }

  static fromText(text: string, file = '<config>'): ConfigSource {
    if (text.length > MAX_CONFIG_BYTES)
      throw new ConfigError('Read', `config larger than ${MAX_CONFIG_BYTES} bytes`, { file });
    const lines = new LineCounter();
    const deep = findExcessNesting(text);
    if (deep) {
      const pos = lineColumn(text, deep.offset);
      const what = deep.nodes
        ? `YAML with more than ${MAX_CONFIG_NODES} values (a config needs a few hundred)`
        : `YAML nested more than ${MAX_CONFIG_DEPTH} levels deep (a config needs a few)`;
      throw new ConfigError('Syntax', `${what}; refused before parsing`, { file, ...pos });
    }
    // duplicate keys: checked below in linear time (the package's own check is quadratic)
    const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: false, prettyErrors: false });
    const e = doc.errors[0];
    const dup = e ? undefined : firstDuplicateKey(doc);
    if (e || dup) {
      const pos = lines.linePos(e ? e.pos[0] : (dup!.range?.[0] ?? 0));
      const what = e ? e.message.split('\n')[0] : 'Map keys must be unique';
      throw new ConfigError('Syntax', `YAML syntax error: ${what}`, { file, line: pos.line, column: pos.col });
    }
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: 100 });
    } catch (err) {
      throw new ConfigError('Syntax', `YAML error: ${(err as Error).message}`, { file }, { cause: err });
    }
    return new ConfigSource(file, doc, lines, value ?? {});
  }

  /**
   * Line/column of the node at `keyPath`, or of its nearest existing ancestor. `atKey` points at a map key
   * instead of its value.
   */
  position(keyPath: KeyPath, atKey?: string): { line: number; column: number } | undefined {
    const p = [...keyPath];
    for (;;) {
      const node = (p.length === 0 ? this.doc.contents : this.doc.getIn(p, true)) as Node | undefined;
      if (node && typeof node === 'object' && 'range' in node && node.range) {
        let offset = node.range[0];
        if (atKey !== undefined && isMap(node)) {
          const pair = node.items.find((it) => isPair(it) && isScalar(it.key) && String(it.key.value) === atKey);
          const k = pair?.key as Node | undefined;
          if (k?.range) offset = k.range[0];
        }
        const lp = this.lines.linePos(offset);
        return { line: lp.line, column: lp.col };
      }
      if (p.length === 0) return undefined;
      p.pop();
      atKey = undefined;
    }
  }

  /** Validates the value at `at` with `schema`; the first issue becomes a ConfigError pointing into the file. */
  validate<S extends z.ZodType>(schema: S, value: unknown, at: KeyPath = []): z.output<S> {
    const problems = new ConfigProblems();
    const out = this.check(schema, value, at, problems);
    if (problems.size) throw problems.list[0];
    return out as z.output<S>;
  }

  /**
   * Validates the value at `at` with `schema`, adding every issue to `problems` as a ConfigError pointing into the
   * file (unknown keys with the nearest known key as a hint); the parsed value, or undefined when there were issues.
   */
  check<S extends z.ZodType>(
    schema: S,
    value: unknown,
    at: KeyPath,
    problems: ConfigProblems,
  ): z.output<S> | undefined {
    const r = schema.safeParse(value);
    if (r.success) return r.data;
    for (const issue of r.error.issues) {
      if (problems.full) {
        problems.add(() => new ConfigError('Invalid', issue.message, { file: this.file }));
        continue;
      }
      const rel = issue.path.map((k) => (typeof k === 'number' ? k : String(k)));
      const full = [...at, ...rel];
      if (issue.code === 'unrecognized_keys') {
        const known = objectKeysAt(schema, rel) ?? [];
        // lazily: finding a key's position is a walk over its map, and a hostile config has 10^5 unknown keys
        for (const key of (issue as { keys: string[] }).keys) {
          problems.add(() => {
            const detail = `unknown key '${key}'${didYouMean(key, known)}`;
            const where = this.locate([...full, key], () => this.position(full, key));
            return new ConfigError('Invalid', detail, { ...where, key: formatKey([...full, key]) });
          });
        }
        continue;
      }
      const where = this.locate(full, () => this.position(full));
      problems.add(new ConfigError('Invalid', issue.message, { ...where, key: formatKey(full) || undefined }));
    }
    return undefined;
  }

  /** A ConfigError pointing at `keyPath` (for checks beyond the schema, e.g. plugin resolution); `cause` chained. */
  error(keyPath: KeyPath, detail: string, cause?: unknown): ConfigError {
    return new ConfigError(
      'Invalid',
      detail,
      { ...this.locate(keyPath, () => this.position(keyPath)), key: formatKey(keyPath) || undefined },
      cause === undefined ? undefined : { cause },
    );
  }

  /** Overrides applied to this source (`--set`), for errors about the values they set. */
  private overrides: readonly { readonly path: KeyPath; readonly expr: string }[] = [];

  /**
   * The same document with values set at key paths (`vmm run --set machine.memory=2G`): a new source; errors about
   * a value an override set name the override (`--set machine.memory=0`) instead of a line of the file.
   */
  withOverrides(
    sets: readonly { readonly path: KeyPath; readonly value: unknown; readonly expr: string }[],
  ): ConfigSource {
    const doc = this.doc.clone();
    for (const o of sets) {
      if (o.path.length === 0) throw new ConfigError('Invalid', `--set ${o.expr}: no key given`, { file: this.file });
      try {
        doc.setIn(o.path, doc.createNode(o.value));
      } catch (err) {
        throw new ConfigError('Invalid', `--set ${o.expr}: ${(err as Error).message}`, { file: this.file });
      }
    }
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: 100 });
    } catch (err) {
      throw new ConfigError('Syntax', `YAML error: ${(err as Error).message}`, { file: this.file }, { cause: err });
    }
    const s = new ConfigSource(this.file, doc, this.lines, value ?? {});
    s.baseOverride = this.baseOverride;
    s.overrides = [...this.overrides, ...sets.map((o) => ({ path: o.path, expr: o.expr }))];
    return s;
  }

  /** Where an error about `keyPath` points: the override that set it, else the file at `pos()`. */
  private locate(keyPath: KeyPath, pos: () => { line: number; column: number } | undefined): ConfigErrorData {
    const o = [...this.overrides]
      .reverse()
      .find((x) => x.path.length <= keyPath.length && x.path.every((k, i) => String(k) === String(keyPath[i])));
    return o ? { file: `--set ${o.expr}` } : { file: this.file, ...pos() };
  }
}

/** 1-based line and column of a character offset. */
function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let start = 0;
  for (let i = text.indexOf('\n'); i >= 0 && i < offset; i = text.indexOf('\n', i + 1)) {
    line++;
    start = i + 1;
  }
  return { line, column: offset - start + 1 };
}

/** 'a.b[2].c' for a key path. */
export function formatKey(p: KeyPath): string {
  let s = '';
  for (const k of p) s += typeof k === 'number' ? `[${k}]` : s ? `.${k}` : k;
  return s;
}
