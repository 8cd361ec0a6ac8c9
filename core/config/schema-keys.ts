import type { z } from 'zod';
import type { KeyPath } from './source.js';

interface Def {
  type: string;
  innerType?: z.ZodType;
  in?: z.ZodType;
  element?: z.ZodType;
  valueType?: z.ZodType;
  options?: z.ZodType[];
  getter?: () => z.ZodType;
}

const defOf = (s: z.ZodType | undefined): Def | undefined => (s as { _zod?: { def: Def } } | undefined)?._zod?.def;

/** The schema under wrappers that do not change the shape (optional, default, transforms, lazy). */
function unwrap(s: z.ZodType | undefined): z.ZodType | undefined {
  for (let i = 0; i < 32 && s; i++) {
    const d = defOf(s);
    if (!d) return s;
    if (['optional', 'default', 'prefault', 'nullable', 'readonly', 'catch', 'nonoptional'].includes(d.type))
      s = d.innerType;
    else if (d.type === 'pipe') s = d.in;
    else if (d.type === 'lazy' && d.getter) s = d.getter();
    else return s;
  }
  return s;
}

const shapeOf = (s: z.ZodType | undefined): Record<string, z.ZodType> | undefined =>
  defOf(s)?.type === 'object' ? (s as unknown as { shape: Record<string, z.ZodType> }).shape : undefined;

/**
 * The keys an object schema accepts at `at` inside `schema` (a zod 4 schema), for "did you mean" hints on unknown
 * keys; undefined when the path does not lead to an object schema (a union, a record, an unknown shape).
 */
export function objectKeysAt(schema: z.ZodType, at: KeyPath): string[] | undefined {
  let s: z.ZodType | undefined = schema;
  for (const k of at) {
    s = unwrap(s);
    const d = defOf(s);
    if (!d) return undefined;
    if (d.type === 'object') s = shapeOf(s)?.[String(k)];
    else if (d.type === 'array') s = d.element;
    else if (d.type === 'record') s = d.valueType;
    else return undefined;
  }
  const shape = shapeOf(unwrap(s));
  return shape ? Object.keys(shape) : undefined;
}
