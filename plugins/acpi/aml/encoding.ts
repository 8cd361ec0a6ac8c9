import { AcpiError } from '../errors.js';

/**
 * The primitive encodings of AML (ACPI 6.4, 20.2): package lengths, names, integers and
 * strings. Everything here returns bytes; terms.ts builds the objects from them.
 */

/** Concatenates byte arrays. */
export function concat(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** The largest value a PkgLength encodes (28 bits). */
const MAX_PKG_LENGTH = 2 ** 28 - 1;

/** `value` in PkgLength form with `n` bytes (1..4): a lead byte (count in bits 6-7) and 1-3 more. */
function pkgLengthBytes(value: number, n: number): Uint8Array {
  if (n === 1) return Uint8Array.of(value);
  const out = [((n - 1) << 6) | (value & 0xf)];
  for (let i = 1; i < n; i++) out.push(Math.floor(value / 2 ** (4 + 8 * (i - 1))) & 0xff);
  return Uint8Array.from(out);
}

/** The number of bytes PkgLength needs for `value`. */
function pkgLengthSize(value: number): number {
  if (value < 0x40) return 1;
  for (let n = 2; n <= 4; n++) if (value < 2 ** (4 + 8 * (n - 1))) return n;
  return 5;
}

/**
 * PkgLength for `contentLength` bytes that follow it: the encoded value counts itself too
 * (1 to 4 bytes, up to 2^28 - 1).
 */
export function pkgLength(contentLength: number): Uint8Array {
  for (let n = 1; n <= 4; n++) {
    if (pkgLengthSize(contentLength + n) === n) return pkgLengthBytes(contentLength + n, n);
  }
  throw new AcpiError('TooLarge', `an AML package of ${contentLength} bytes exceeds ${MAX_PKG_LENGTH}`, {
    length: contentLength,
  });
}

/** A raw value in PkgLength form, as field units carry their bit counts (not counting itself). */
export function pkgLengthValue(value: number): Uint8Array {
  const n = pkgLengthSize(value);
  if (!Number.isInteger(value) || value < 0 || n > 4)
    throw new AcpiError('TooLarge', `${value} does not fit a PkgLength`, { value });
  return pkgLengthBytes(value, n);
}

/** `op` + PkgLength + `body`: the shape of Scope, Device, Method, If, Package, Buffer, Field... */
export function withPkgLength(op: readonly number[], body: Uint8Array): Uint8Array {
  return concat([Uint8Array.from(op), pkgLength(body.length), body]);
}

const SEGMENT = /^[A-Z_][A-Z0-9_]{0,3}$/;

/** A NameSeg: 1 to 4 characters (A-Z, 0-9, _; not a digit first), padded with '_' as ASL does. */
export function nameSeg(seg: string): Uint8Array {
  if (!SEGMENT.test(seg))
    throw new AcpiError('InvalidName', `'${seg}' is not an AML name segment (1-4 of A-Z 0-9 _, no leading digit)`, {
      name: seg,
    });
  return Uint8Array.from(seg.padEnd(4, '_'), (c) => c.charCodeAt(0));
}

/**
 * A NameString in ASL notation: optional root '\' or parent '^' prefixes, then segments joined
 * by '.', e.g. '\_SB.PCI0', '^^PRT0', '_HID'. Two segments use DualNamePrefix, more use
 * MultiNamePrefix; '\' alone is the root.
 */
export function nameString(path: string): Uint8Array {
  let i = 0;
  const prefix: number[] = [];
  if (path.startsWith('\\')) {
    prefix.push(0x5c);
    i = 1;
  } else {
    while (path[i] === '^') {
      prefix.push(0x5e);
      i++;
    }
  }
  const rest = path.slice(i);
  if (rest === '') {
    if (prefix.length === 0) throw new AcpiError('InvalidName', 'an empty AML name', { name: path });
    return Uint8Array.from([...prefix, 0x00]); // NullName
  }
  const segs = rest.split('.').map(nameSeg);
  if (segs.length > 255) throw new AcpiError('InvalidName', `AML name '${path}' has over 255 segments`, { name: path });
  const head = segs.length === 1 ? [] : segs.length === 2 ? [0x2e] : [0x2f, segs.length];
  return concat([Uint8Array.from([...prefix, ...head]), ...segs]);
}

/** Little-endian bytes of an unsigned value. */
export function le(value: number | bigint, bytes: number): number[] {
  let v = BigInt(value);
  const out: number[] = [];
  for (let i = 0; i < bytes; i++) {
    out.push(Number(v & 0xffn));
    v >>= 8n;
  }
  return out;
}

const U64_MAX = (1n << 64n) - 1n;

/** An AML integer with the shortest encoding: ZeroOp, OneOp, Byte/Word/DWord/QWord prefix. */
export function integer(value: number | bigint): Uint8Array {
  if (typeof value === 'number' && !Number.isSafeInteger(value))
    throw new AcpiError('InvalidValue', `AML integer ${value} is not a safe integer (use a bigint)`, { value });
  const v = BigInt(value);
  if (v < 0n || v > U64_MAX)
    throw new AcpiError('InvalidValue', `AML integer ${v} is outside 0..2^64-1`, { value: v.toString() });
  if (v === 0n) return Uint8Array.of(0x00);
  if (v === 1n) return Uint8Array.of(0x01);
  if (v <= 0xffn) return Uint8Array.of(0x0a, Number(v));
  if (v <= 0xffffn) return Uint8Array.from([0x0b, ...le(v, 2)]);
  if (v <= 0xffff_ffffn) return Uint8Array.from([0x0c, ...le(v, 4)]);
  return Uint8Array.from([0x0e, ...le(v, 8)]);
}

/** An AML String: ASCII 0x01-0x7F, NUL-terminated. */
export function string(text: string): Uint8Array {
  const out = [0x0d];
  for (const c of text) {
    const code = c.charCodeAt(0);
    if (c.length !== 1 || code < 1 || code > 0x7f)
      throw new AcpiError('InvalidValue', `AML strings are ASCII without NUL; ${JSON.stringify(text)} is not`, {
        text,
      });
    out.push(code);
  }
  out.push(0);
  return Uint8Array.from(out);
}

/**
 * EisaId('PNP0A08') as ASL compiles it: three letters in 5 bits each and four hex digits,
 * stored big-endian, as a DWord integer.
 */
export function eisaId(id: string): Uint8Array {
  if (!/^[A-Z]{3}[0-9A-F]{4}$/.test(id))
    throw new AcpiError('InvalidValue', `'${id}' is not an EISA id (3 letters, 4 upper-case hex digits)`, { id });
  const l = (i: number): number => id.charCodeAt(i) - 0x40;
  const vendor = (l(0) << 10) | (l(1) << 5) | l(2);
  const product = parseInt(id.slice(3), 16);
  return Uint8Array.of(0x0c, vendor >> 8, vendor & 0xff, product >> 8, product & 0xff);
}
