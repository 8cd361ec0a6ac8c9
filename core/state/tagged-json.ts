import { z } from 'zod';

/** Limits on a tagged value decoded from untrusted input. */
export interface TaggedJsonLimits {
  /** Deepest nesting of arrays and objects (default 16). */
  readonly maxDepth?: number;
  /** Most array elements and object keys in all (default 65536). */
  readonly maxNodes?: number;
  /** Most bytes of one `{ $bytes }` leaf (default 1 MiB). */
  readonly maxBytes?: number;
}

/** Thrown inside decode to stop at the first problem (its issue is already recorded). */
const REFUSED = Symbol('refused');

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);

/**
 * A codec for data whose schema lives elsewhere (an arch's vCPU payload): the in-memory form may hold
 * bigint and Uint8Array anywhere, the saved form is plain JSON where a bigint is `{ "$u64": "123" }`
 * (decimal, below 2^64) and bytes are `{ "$bytes": "<base64>" }`. Decoding bounds depth, size and
 * bytes, and refuses what JSON cannot hold; the owner's schema validates the decoded value after.
 */
export function taggedJson(limits: TaggedJsonLimits = {}) {
  const maxDepth = limits.maxDepth ?? 16;
  const maxNodes = limits.maxNodes ?? 65536;
  const maxBytes = limits.maxBytes ?? 1 << 20;
  const maxB64 = Math.ceil(maxBytes / 3) * 4;

  const decode = (saved: unknown, payload: z.core.ParsePayload<unknown>): unknown => {
    let nodes = 0;
    const fail = (message: string): never => {
      payload.issues.push({ code: 'custom', message, input: saved });
      throw REFUSED;
    };
    const walk = (v: unknown, depth: number): unknown => {
      if (v === null || typeof v === 'boolean' || typeof v === 'string') return v;
      if (typeof v === 'number') return Number.isFinite(v) ? v : fail('a number that is not finite');
      if (depth >= maxDepth) return fail(`nested deeper than ${maxDepth}`);
      if (Array.isArray(v)) {
        if ((nodes += v.length) > maxNodes) fail(`more than ${maxNodes} elements`);
        return v.map((x) => walk(x, depth + 1));
      }
      if (!isPlainObject(v)) return fail(`a ${typeof v} is not JSON`);
      const keys = Object.keys(v);
      if (keys.length === 1 && keys[0] === '$u64') {
        const s = v.$u64;
        if (typeof s !== 'string' || !/^(0|[1-9]\d{0,19})$/.test(s) || BigInt(s) >= 1n << 64n)
          return fail('$u64 must be a decimal string below 2^64');
        return BigInt(s);
      }
      if (keys.length === 1 && keys[0] === '$bytes') {
        const s = v.$bytes;
        if (typeof s !== 'string' || s.length > maxB64 || !/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 !== 0)
          return fail(`$bytes must be base64 of at most ${maxBytes} bytes`);
        const b = new Uint8Array(Buffer.from(s, 'base64'));
        return b.length <= maxBytes ? b : fail(`$bytes must be base64 of at most ${maxBytes} bytes`);
      }
      if ((nodes += keys.length) > maxNodes) fail(`more than ${maxNodes} elements`);
      const out: Record<string, unknown> = {};
      for (const k of keys) {
        if (k === '__proto__') fail("a key named '__proto__'");
        out[k] = walk(v[k], depth + 1);
      }
      return out;
    };
    try {
      return walk(saved, 0);
    } catch (err) {
      if (err === REFUSED) return undefined; // the issue is recorded: the parse fails
      throw err;
    }
  };

  const encode = (v: unknown): unknown => {
    if (typeof v === 'bigint') return { $u64: v.toString() };
    if (v instanceof Uint8Array)
      return { $bytes: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') };
    if (Array.isArray(v)) return v.map(encode);
    if (isPlainObject(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, encode(x)]));
    return v;
  };

  return z.codec(z.unknown(), z.unknown(), { decode, encode });
}
