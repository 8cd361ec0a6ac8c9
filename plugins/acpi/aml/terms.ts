import { AcpiError } from '../errors.js';
import { concat, integer, nameSeg, nameString, pkgLengthValue, string, withPkgLength } from './encoding.js';

/**
 * AML objects and expressions (ACPI 6.4, 20.2.5). Every builder returns the encoded bytes, so
 * they nest by plain composition: `scope('\\_SB', [device('VR00', [name('_HID', 'LNRO0005')])])`.
 *
 * Operand convention: where AML expects a value (TermArg, a package element, a Name's object),
 * a `number`/`bigint` is an Integer, a `string` is a String literal and a `Uint8Array` is an
 * already encoded term (ref('\\_SB.PCI0'), local(0), an expression). Where AML expects an object
 * to act on (a Store target, Notify's object, a method to call, a field's region), a `string` is a
 * name path in ASL notation.
 */
export type AmlValue = number | bigint | string | Uint8Array;

/** An operand (see the convention above) as bytes. */
export function value(v: AmlValue): Uint8Array {
  if (v instanceof Uint8Array) return v;
  return typeof v === 'string' ? string(v) : integer(v);
}

/** A target or object operand: a name path, or already encoded bytes (local(0), arg(1), ...). */
function target(t: string | Uint8Array | undefined): Uint8Array {
  if (t === undefined) return Uint8Array.of(0x00); // NullName: the result is not stored
  return typeof t === 'string' ? nameString(t) : t;
}

const EXT = 0x5b;

/** A reference to a named object, as an operand: `ref('\\_SB.PCI0.PRT0')`. */
export function ref(path: string): Uint8Array {
  return nameString(path);
}

/** LocalN (0..7). */
export function local(n: number): Uint8Array {
  if (!Number.isInteger(n) || n < 0 || n > 7) throw new AcpiError('InvalidValue', `Local${n} does not exist`, { n });
  return Uint8Array.of(0x60 + n);
}

/** ArgN (0..6). */
export function arg(n: number): Uint8Array {
  if (!Number.isInteger(n) || n < 0 || n > 6) throw new AcpiError('InvalidValue', `Arg${n} does not exist`, { n });
  return Uint8Array.of(0x68 + n);
}

/** The constant Ones (all bits set). */
export const ONES = Uint8Array.of(0xff);

/** Name(path, object). */
export function name(path: string, object: AmlValue): Uint8Array {
  return concat([Uint8Array.of(0x08), nameString(path), value(object)]);
}

/** Scope(path) { terms }. */
export function scope(path: string, terms: readonly Uint8Array[]): Uint8Array {
  return withPkgLength([0x10], concat([nameString(path), ...terms]));
}

/** Device(path) { terms }. */
export function device(path: string, terms: readonly Uint8Array[]): Uint8Array {
  return withPkgLength([EXT, 0x82], concat([nameString(path), ...terms]));
}

/** Options of a Method: Serialized or NotSerialized, and the SyncLevel (0..15) when serialized. */
export interface MethodOptions {
  readonly serialized?: boolean;
  readonly syncLevel?: number;
}

/** Method(path, argCount, Serialized|NotSerialized[, syncLevel]) { terms }. */
export function method(
  path: string,
  argCount: number,
  terms: readonly Uint8Array[],
  o: MethodOptions = {},
): Uint8Array {
  const sync = o.syncLevel ?? 0;
  if (!Number.isInteger(argCount) || argCount < 0 || argCount > 7)
    throw new AcpiError('InvalidValue', `method ${path} takes 0..7 arguments, not ${argCount}`, { argCount });
  if (!Number.isInteger(sync) || sync < 0 || sync > 15)
    throw new AcpiError('InvalidValue', `method ${path} sync level ${sync} is outside 0..15`, { sync });
  const flags = argCount | (o.serialized ? 0x08 : 0) | (sync << 4);
  return withPkgLength([0x14], concat([nameString(path), Uint8Array.of(flags), ...terms]));
}

/** Package() { elements } (VarPackage beyond 255 elements). */
export function pkg(elements: readonly AmlValue[]): Uint8Array {
  const body = elements.map(value);
  if (elements.length <= 255) return withPkgLength([0x12], concat([Uint8Array.of(elements.length), ...body]));
  return withPkgLength([0x13], concat([integer(elements.length), ...body]));
}

/** Buffer() { bytes }: the size is the byte count. */
export function buffer(bytes: Uint8Array | readonly number[]): Uint8Array {
  const data = Uint8Array.from(bytes);
  return withPkgLength([0x11], concat([integer(data.length), data]));
}

/** Return(value). */
export function ret(v: AmlValue): Uint8Array {
  return concat([Uint8Array.of(0xa4), value(v)]);
}

/** If(predicate) { then } [Else { otherwise }]. */
export function ifThen(
  predicate: AmlValue,
  then: readonly Uint8Array[],
  otherwise?: readonly Uint8Array[],
): Uint8Array {
  const ifPart = withPkgLength([0xa0], concat([value(predicate), ...then]));
  return otherwise === undefined ? ifPart : concat([ifPart, withPkgLength([0xa1], concat(otherwise))]);
}

/** While(predicate) { terms }. */
export function whileLoop(predicate: AmlValue, terms: readonly Uint8Array[]): Uint8Array {
  return withPkgLength([0xa2], concat([value(predicate), ...terms]));
}

/** Break (out of the innermost While). */
export const BREAK = Uint8Array.of(0xa5);

/** Store(value, target). */
export function store(v: AmlValue, to: string | Uint8Array): Uint8Array {
  return concat([Uint8Array.of(0x70), value(v), target(to)]);
}

const binary =
  (op: number) =>
  (a: AmlValue, b: AmlValue, to?: string | Uint8Array): Uint8Array =>
    concat([Uint8Array.of(op), value(a), value(b), target(to)]);

/** Add(a, b[, target]). */
export const add = binary(0x72);
/** Subtract(a, b[, target]). */
export const subtract = binary(0x74);
/** ShiftLeft(a, b[, target]). */
export const shiftLeft = binary(0x79);
/** ShiftRight(a, b[, target]). */
export const shiftRight = binary(0x7a);
/** And(a, b[, target]). */
export const and = binary(0x7b);
/** Or(a, b[, target]). */
export const or = binary(0x7d);

const logical =
  (op: number) =>
  (a: AmlValue, b: AmlValue): Uint8Array =>
    concat([Uint8Array.of(op), value(a), value(b)]);

/** LAnd(a, b). */
export const lAnd = logical(0x90);
/** LOr(a, b). */
export const lOr = logical(0x91);
/** LEqual(a, b). */
export const lEqual = logical(0x93);
/** LGreater(a, b). */
export const lGreater = logical(0x94);
/** LLess(a, b). */
export const lLess = logical(0x95);

/** LNot(a). */
export function lNot(a: AmlValue): Uint8Array {
  return concat([Uint8Array.of(0x92), value(a)]);
}

/** Increment(target). */
export function increment(to: string | Uint8Array): Uint8Array {
  return concat([Uint8Array.of(0x75), target(to)]);
}

/** Notify(object, value): e.g. Notify(\_SB.PCI0.S08, 1) for a device check. */
export function notify(object: string | Uint8Array, v: AmlValue): Uint8Array {
  return concat([Uint8Array.of(0x86), target(object), value(v)]);
}

/** A call of the method at `path` with its arguments (the method must be defined, or the AML cannot be parsed). */
export function call(path: string, args: readonly AmlValue[] = []): Uint8Array {
  return concat([nameString(path), ...args.map(value)]);
}

/** Mutex(name, syncLevel). */
export function mutex(path: string, syncLevel = 0): Uint8Array {
  if (!Number.isInteger(syncLevel) || syncLevel < 0 || syncLevel > 15)
    throw new AcpiError('InvalidValue', `mutex ${path} sync level ${syncLevel} is outside 0..15`, { syncLevel });
  return concat([Uint8Array.of(EXT, 0x01), nameString(path), Uint8Array.of(syncLevel)]);
}

/** Acquire(mutex, timeout ms; 0xFFFF waits forever). */
export function acquire(mutexPath: string, timeoutMs = 0xffff): Uint8Array {
  return concat([Uint8Array.of(EXT, 0x23), nameString(mutexPath), Uint8Array.of(timeoutMs & 0xff, timeoutMs >> 8)]);
}

/** Release(mutex). */
export function release(mutexPath: string): Uint8Array {
  return concat([Uint8Array.of(EXT, 0x27), nameString(mutexPath)]);
}

/** Operation region spaces (ACPI 6.4, 19.6.100). */
export const RegionSpace = { SystemMemory: 0, SystemIO: 1, PCI_Config: 2, EmbeddedControl: 3, SMBus: 4 } as const;

/** OperationRegion(name, space, offset, length). */
export function opRegion(path: string, space: number, offset: AmlValue, length: AmlValue): Uint8Array {
  return concat([Uint8Array.of(EXT, 0x80), nameString(path), Uint8Array.of(space), value(offset), value(length)]);
}

/** Field access types (AnyAcc .. BufferAcc). */
export const FieldAccess = { Any: 0, Byte: 1, Word: 2, DWord: 3, QWord: 4, Buffer: 5 } as const;
/** Field update rules. */
export const FieldUpdate = { Preserve: 0, WriteAsOnes: 1, WriteAsZeros: 2 } as const;

/** One field unit: a named run of bits, or (no name) a run of bits to skip (Offset/reserved). */
export interface FieldUnit {
  /** 1-4 characters; omitted: reserved bits. */
  readonly name?: string;
  readonly bits: number;
}

/** Field(region, access, Lock|NoLock, update) { units }. */
export function field(
  region: string,
  units: readonly FieldUnit[],
  o: { access?: number; lock?: boolean; update?: number } = {},
): Uint8Array {
  const flags = (o.access ?? FieldAccess.Any) | (o.lock ? 0x10 : 0) | ((o.update ?? FieldUpdate.Preserve) << 5);
  const list = units.map((u) => {
    if (!Number.isInteger(u.bits) || u.bits < 1 || u.bits >= 2 ** 28)
      throw new AcpiError('InvalidValue', `field unit ${u.name ?? '(reserved)'} has ${u.bits} bits`, { bits: u.bits });
    // a field unit's PkgLength holds the bit count itself
    return concat([u.name === undefined ? Uint8Array.of(0x00) : nameSeg(u.name), pkgLengthValue(u.bits)]);
  });
  return withPkgLength([EXT, 0x81], concat([nameString(region), Uint8Array.of(flags), ...list]));
}
