import { z } from 'zod';

/**
 * Zod codecs for the saved form of state (core/state/README.md): every saved state is plain JSON data
 * (objects, arrays, strings, finite numbers, booleans, null), so it survives JSON and any binary
 * stream that carries JSON values. `schema.decode(saved)` gives the in-memory form, `schema.encode(value)`
 * the saved form; both validate.
 */

/** A u8 as a JSON number. */
export const u8 = z.number().int().min(0).max(0xff);
/** A u16 as a JSON number. */
export const u16 = z.number().int().min(0).max(0xffff);
/** A u32 as a JSON number. */
export const u32 = z.number().int().min(0).max(0xffff_ffff);

/** An unsigned integer below 2^bits held as a bigint, saved as a decimal string (JSON numbers lose bits above 2^53). */
export function bigUint(bits: number) {
  const max = (1n << BigInt(bits)) - 1n;
  return z.codec(z.string().regex(/^(0|[1-9]\d{0,19})$/, 'a decimal integer string'), z.bigint().min(0n).max(max), {
    decode: (s) => BigInt(s),
    encode: (v) => v.toString(),
  });
}

/** A u64 held as a bigint, saved as a decimal string. */
export const u64 = bigUint(64);

/**
 * Bytes held as a Uint8Array, saved as a base64 string of at most `maxBytes` bytes (checked on the
 * string before decoding, so a hostile state cannot make us allocate more).
 */
export function bytes(maxBytes: number) {
  return z.codec(
    z.base64().max(Math.ceil(maxBytes / 3) * 4),
    z
      .custom<Uint8Array>((v) => v instanceof Uint8Array, 'expected a Uint8Array')
      .refine((b) => b.length <= maxBytes, `at most ${maxBytes} bytes`),
    {
      decode: (s) => new Uint8Array(Buffer.from(s, 'base64')),
      encode: (b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64'),
    },
  );
}
