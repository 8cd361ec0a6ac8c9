import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';
import { buildLocations } from '../../core/plugin/locations.js';

/** The parts of an OpenAPI 3.0 schema object the checker reads. */
export interface SchemaObject {
  $ref?: string;
  type?: string;
  required?: string[];
  properties?: Record<string, SchemaObject>;
  additionalProperties?: boolean | SchemaObject;
  items?: SchemaObject;
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  minLength?: number;
  format?: string;
}

/** The spec, parsed: paths -> method -> requestBody / responses. */
export interface Spec {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, SchemaObject> };
}
interface Operation {
  requestBody?: { required?: boolean; content: Record<string, { schema: SchemaObject }> };
  responses: Record<string, { content?: Record<string, { schema: SchemaObject }> }>;
}

/** Cloud Hypervisor's OpenAPI spec as the repository carries it (hosts/api/cloud-hypervisor-openapi.yaml). */
export function loadSpec(): Spec {
  const file = path.join(buildLocations().repoRoot, 'hosts', 'api', 'cloud-hypervisor-openapi.yaml');
  return parse(fs.readFileSync(file, 'utf8')) as Spec;
}

const INT_RANGE: Record<string, [number, number]> = {
  int8: [-128, 127],
  uint8: [0, 255],
  int16: [-32768, 32767],
  int32: [-(2 ** 31), 2 ** 31 - 1],
  uint32: [0, 2 ** 32 - 1],
};

/**
 * Checks a JSON value against a schema of the spec (an independent reading of OpenAPI 3.0's subset the spec uses:
 * $ref, type, required, properties, additionalProperties, items, enum, minimum/maximum, minLength, integer formats).
 * Returns the problems found, each naming where ([] when it conforms).
 */
export function checkSchema(spec: Spec, schema: SchemaObject, v: unknown, at = '$'): string[] {
  if (schema.$ref) {
    const name = schema.$ref.replace('#/components/schemas/', '');
    const target = spec.components.schemas[name];
    if (!target) return [`${at}: unknown $ref ${schema.$ref}`];
    return checkSchema(spec, target, v, at);
  }
  const errs: string[] = [];
  const t = schema.type;
  const isObj = typeof v === 'object' && v !== null && !Array.isArray(v);
  if (t === 'object' && !isObj) return [`${at}: expected an object`];
  if (t === 'array' && !Array.isArray(v)) return [`${at}: expected an array`];
  if (t === 'string' && typeof v !== 'string') return [`${at}: expected a string`];
  if (t === 'boolean' && typeof v !== 'boolean') return [`${at}: expected a boolean`];
  if (t === 'integer' && !Number.isInteger(v)) return [`${at}: expected an integer`];
  if (t === 'number' && typeof v !== 'number') return [`${at}: expected a number`];
  if (schema.enum && !schema.enum.includes(v)) errs.push(`${at}: ${JSON.stringify(v)} is not one of ${schema.enum}`);
  if (typeof v === 'number') {
    const r = schema.format ? INT_RANGE[schema.format] : undefined;
    if (r && (v < r[0] || v > r[1])) errs.push(`${at}: ${v} is outside ${schema.format}`);
    if (schema.minimum !== undefined && v < schema.minimum) errs.push(`${at}: ${v} < ${schema.minimum}`);
    if (schema.maximum !== undefined && v > schema.maximum) errs.push(`${at}: ${v} > ${schema.maximum}`);
  }
  if (typeof v === 'string' && schema.minLength !== undefined && v.length < schema.minLength)
    errs.push(`${at}: shorter than ${schema.minLength}`);
  if (isObj) {
    const o = v as Record<string, unknown>;
    for (const r of schema.required ?? []) if (!(r in o)) errs.push(`${at}: missing required '${r}'`);
    for (const [k, val] of Object.entries(o)) {
      const p = schema.properties?.[k];
      if (p) errs.push(...checkSchema(spec, p, val, `${at}.${k}`));
      else if (typeof schema.additionalProperties === 'object')
        errs.push(...checkSchema(spec, schema.additionalProperties, val, `${at}.${k}`));
      else if (schema.additionalProperties === false) errs.push(`${at}: unexpected '${k}'`);
    }
  }
  if (Array.isArray(v) && schema.items)
    v.forEach((x, i) => errs.push(...checkSchema(spec, schema.items!, x, `${at}[${i}]`)));
  return errs;
}

/** Problems of a request body for `PUT|GET /<name>` (the spec's requestBody schema; [] when it conforms). */
export function checkRequest(spec: Spec, name: string, method: string, body: unknown): string[] {
  const op = spec.paths[`/${name}`]?.[method.toLowerCase()];
  if (!op) return [`${method} /${name} is not in the spec`];
  const schema = op.requestBody?.content['application/json']?.schema;
  if (!schema) return body === undefined ? [] : [`${method} /${name} takes no body`];
  if (body === undefined) return op.requestBody?.required ? [`${method} /${name} needs a body`] : [];
  return checkSchema(spec, schema, body);
}

/**
 * Problems of a response: a status the spec lists for the operation with its schema (or no body where it has none);
 * any 4xx/5xx must carry Cloud Hypervisor's error shape, a JSON array of strings.
 */
export function checkResponse(spec: Spec, name: string, method: string, status: number, body: unknown): string[] {
  if (status >= 400) {
    const ok = Array.isArray(body) && body.length > 0 && body.every((m) => typeof m === 'string');
    return ok ? [] : [`${status}: error body is not an array of strings: ${JSON.stringify(body)}`];
  }
  const op = spec.paths[`/${name}`]?.[method.toLowerCase()];
  if (!op) return [`${method} /${name} is not in the spec`];
  const r = op.responses[String(status)];
  if (!r) return [`${method} /${name}: status ${status} is not in the spec (${Object.keys(op.responses)})`];
  const schema = r.content?.['application/json']?.schema;
  if (!schema) return body === undefined ? [] : [`${method} /${name} ${status}: the spec has no body here`];
  return checkSchema(spec, schema, body);
}
