/**
 * A tiny C struct layout engine: fields are listed in declaration order and
 * offsets, sizes and alignment follow the x86_64 SysV ABI (each member aligned
 * to its natural alignment, the struct padded to its largest alignment), so a
 * definition reads like the kernel header it mirrors. Unions place every member
 * at offset 0. The computed offsets are checked against gcc + <linux/kvm.h> in
 * layout.test.ts.
 */

/** A primitive C member type: unsigned or signed integers of 8 to 64 bits (64-bit ones read as bigint). */
export type Prim = 'u8' | 'u16' | 'u32' | 'u64' | 'i32' | 'i64';

const PRIM_SIZE: Record<Prim, number> = { u8: 1, u16: 2, u32: 4, u64: 8, i32: 4, i64: 8 };

/** A fixed-length C array member (`T name[length]`). */
export interface ArrayType {
  readonly kind: 'array';
  readonly of: FieldType;
  readonly length: number;
}
/** What a member can be: a primitive, an array, or a nested struct/union. */
export type FieldType = Prim | ArrayType | StructDef;

/** A laid-out member: its name, byte offset from the start of the struct, size in bytes and type. */
export interface FieldInfo {
  readonly name: string;
  readonly offset: number;
  readonly size: number;
  readonly type: FieldType;
  /** Members of an anonymous union/struct are reached without its name (as in C). */
  readonly anonymous: boolean;
}

/** A laid-out C struct or union: its members with offsets, total size and alignment in bytes (x86-64 SysV). */
export interface StructDef {
  readonly kind: 'struct' | 'union';
  readonly name: string;
  readonly size: number;
  readonly align: number;
  readonly fields: readonly FieldInfo[];
}

/** `[name, type]`, or `[null, unionOrStruct]` for an anonymous member. */
export type FieldSpec = readonly [string | null, FieldType];

/** An array member type of `length` elements of `of`. */
export const array = (of: FieldType, length: number): ArrayType => ({ kind: 'array', of, length });

/** sizeof(t) in bytes, padding included. */
export function sizeOf(t: FieldType): number {
  if (typeof t === 'string') return PRIM_SIZE[t];
  if (t.kind === 'array') return sizeOf(t.of) * t.length;
  return t.size;
}

/** _Alignof(t) in bytes. */
export function alignOf(t: FieldType): number {
  if (typeof t === 'string') return PRIM_SIZE[t];
  if (t.kind === 'array') return alignOf(t.of);
  return t.align;
}

const roundUp = (n: number, a: number): number => Math.ceil(n / a) * a;

function build(kind: 'struct' | 'union', name: string, specs: readonly FieldSpec[]): StructDef {
  let offset = 0,
    size = 0,
    align = 1;
  const fields: FieldInfo[] = [];
  for (const [fname, type] of specs) {
    const a = alignOf(type),
      s = sizeOf(type);
    const at = kind === 'struct' ? roundUp(offset, a) : 0;
    fields.push({ name: fname ?? '', offset: at, size: s, type, anonymous: fname === null });
    align = Math.max(align, a);
    if (kind === 'struct') offset = at + s;
    size = Math.max(size, at + s);
  }
  return { kind, name, size: roundUp(size, align), align, fields };
}

/** Lays out a C struct from its members in declaration order (see the file comment). */
export const struct = (name: string, specs: readonly FieldSpec[]): StructDef => build('struct', name, specs);
/** Lays out a C union: every member at offset 0, size of the largest rounded to the alignment. */
export const union = (name: string, specs: readonly FieldSpec[]): StructDef => build('union', name, specs);

/**
 * Byte offset and size of a member given by a C-style path: 'cs.base',
 * 'channels[1].count', 'io.port' (anonymous members are looked through).
 */
export function fieldAt(def: StructDef, path: string): { offset: number; size: number; type: FieldType } {
  let cur: FieldType = def;
  let offset = 0;
  for (const part of path.split('.')) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)((?:\[\d+\])*)$/.exec(part);
    if (!m) throw new Error(`bad field path '${path}'`);
    if (typeof cur === 'string' || cur.kind === 'array') throw new Error(`'${path}': not a struct at '${part}'`);
    const found = findMember(cur, m[1]);
    if (!found) throw new Error(`${def.name} has no member '${path}'`);
    offset += found.offset;
    cur = found.type;
    for (const idx of m[2].matchAll(/\[(\d+)\]/g)) {
      if (typeof cur === 'string' || cur.kind !== 'array') throw new Error(`'${path}': not an array`);
      const i = Number(idx[1]);
      if (i >= cur.length) throw new Error(`'${path}': index ${i} out of bounds`);
      offset += i * sizeOf(cur.of);
      cur = cur.of;
    }
  }
  return { offset, size: sizeOf(cur), type: cur };
}

function findMember(def: StructDef, name: string): { offset: number; type: FieldType } | undefined {
  for (const f of def.fields) {
    if (!f.anonymous && f.name === name) return { offset: f.offset, type: f.type };
    if (f.anonymous && typeof f.type !== 'string' && f.type.kind !== 'array') {
      const inner = findMember(f.type, name);
      if (inner) return { offset: f.offset + inner.offset, type: inner.type };
    }
  }
  return undefined;
}

/** offsetof(def, path) in bytes, for a C-style path such as 'cs.base' (see fieldAt). */
export const offsetOf = (def: StructDef, path: string): number => fieldAt(def, path).offset;

/**
 * Every leaf member path of a struct (descending into nested structs and the
 * first element of arrays of structs), for layout tests.
 */
export function leafPaths(def: StructDef, prefix = ''): string[] {
  const out: string[] = [];
  for (const f of def.fields) {
    const base = f.anonymous ? prefix.replace(/\.$/, '') : `${prefix}${f.name}`;
    const t = f.type;
    if (typeof t !== 'string' && t.kind !== 'array') {
      if (f.anonymous) out.push(...leafPaths(t, prefix));
      else {
        out.push(base);
        out.push(...leafPaths(t, `${base}.`));
      }
    } else if (typeof t !== 'string' && t.kind === 'array' && typeof t.of !== 'string' && t.of.kind !== 'array') {
      out.push(base);
      out.push(...leafPaths(t.of, `${base}[0].`));
    } else {
      out.push(base);
    }
  }
  return out;
}

/** Reads / writes a primitive through a DataView (little-endian, as on x86). */
export function readPrim(v: DataView, offset: number, t: Prim): number | bigint {
  switch (t) {
    case 'u8':
      return v.getUint8(offset);
    case 'u16':
      return v.getUint16(offset, true);
    case 'u32':
      return v.getUint32(offset, true);
    case 'i32':
      return v.getInt32(offset, true);
    case 'u64':
      return v.getBigUint64(offset, true);
    case 'i64':
      return v.getBigInt64(offset, true);
  }
}

/** Writes a primitive at `offset` (little-endian); numbers and bigints are both accepted. */
export function writePrim(v: DataView, offset: number, t: Prim, value: number | bigint): void {
  switch (t) {
    case 'u8':
      v.setUint8(offset, Number(value));
      return;
    case 'u16':
      v.setUint16(offset, Number(value), true);
      return;
    case 'u32':
      v.setUint32(offset, Number(value), true);
      return;
    case 'i32':
      v.setInt32(offset, Number(value), true);
      return;
    case 'u64':
      v.setBigUint64(offset, BigInt.asUintN(64, BigInt(value)), true);
      return;
    case 'i64':
      v.setBigInt64(offset, BigInt.asIntN(64, BigInt(value)), true);
      return;
  }
}

/** A zeroed buffer of a struct's size plus a DataView over it (for ioctl arguments). */
export function alloc(def: StructDef | number): { buf: Buffer; view: DataView } {
  const buf = Buffer.alloc(typeof def === 'number' ? def : def.size);
  return { buf, view: new DataView(buf.buffer, buf.byteOffset, buf.byteLength) };
}
