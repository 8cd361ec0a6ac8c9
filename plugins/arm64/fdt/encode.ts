/**
 * A flattened device tree (devicetree specification v0.4, chapter 5) encoder: a tree of nodes with
 * byte-string properties becomes a version-17 blob (header, empty memory reservation map, structure
 * block, strings block with property names shared). Property values are built with the helpers in
 * ./values.ts. Names are checked (the spec's characters and lengths) before anything is written.
 */
import { Arm64Error } from '../errors.js';

/** One device tree node: its name (`name@unit`), its properties in order, its children in order. */
export interface FdtNode {
  readonly name: string;
  readonly props: ReadonlyArray<readonly [string, Uint8Array]>;
  readonly children: readonly FdtNode[];
}

/** The FDT header's magic, and the structure block's tokens. */
export const FDT_MAGIC = 0xd00dfeed;
/** Structure block tokens (FDT_BEGIN_NODE, FDT_END_NODE, FDT_PROP, FDT_NOP, FDT_END). */
export const FDT_TOKEN = { BEGIN_NODE: 1, END_NODE: 2, PROP: 3, NOP: 4, END: 9 } as const;
/** The header's size in bytes (version 17: ten big-endian u32 fields). */
export const FDT_HEADER_SIZE = 40;
const VERSION = 17,
  LAST_COMPATIBLE = 16;

const NODE_NAME = /^[A-Za-z0-9,._+-]{1,31}(@[A-Za-z0-9,._+-]+)?$/;
const PROP_NAME = /^[A-Za-z0-9,._+?#-]{1,31}$/;

/** Options of encodeFdt: the boot CPU's physical id (the header's boot_cpuid_phys). */
export interface FdtEncodeOptions {
  bootCpuId?: number;
}

/** Encodes `root` (whose name must be empty) into a flattened device tree blob. */
export function encodeFdt(root: FdtNode, opts: FdtEncodeOptions = {}): Uint8Array {
  if (root.name !== '') throw bad(`the root node's name must be empty, not '${root.name}'`);
  const strings = new StringTable();
  const bytes: number[] = [];
  // the structure block is built as bytes (names and values are not word-sized), then padded per token
  const pushU32 = (v: number) => bytes.push((v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
  const pad = () => {
    while (bytes.length % 4) bytes.push(0);
  };
  const walk = (n: FdtNode, path: string) => {
    if (n !== root && !NODE_NAME.test(n.name)) throw bad(`bad node name '${n.name}' under '${path || '/'}'`);
    const names = new Set<string>();
    pushU32(FDT_TOKEN.BEGIN_NODE);
    for (const ch of Buffer.from(n.name, 'latin1')) bytes.push(ch);
    bytes.push(0);
    pad();
    for (const [name, value] of n.props) {
      if (!PROP_NAME.test(name)) throw bad(`bad property name '${name}' in '${path || '/'}'`);
      if (names.has(name)) throw bad(`property '${name}' twice in '${path || '/'}'`);
      names.add(name);
      pushU32(FDT_TOKEN.PROP);
      pushU32(value.length);
      pushU32(strings.offset(name));
      for (const b of value) bytes.push(b);
      pad();
    }
    const children = new Set<string>();
    for (const c of n.children) {
      if (children.has(c.name)) throw bad(`node '${c.name}' twice under '${path || '/'}'`);
      children.add(c.name);
      walk(c, `${path}/${c.name}`);
    }
    pushU32(FDT_TOKEN.END_NODE);
  };
  walk(root, '');
  pushU32(FDT_TOKEN.END);

  const rsvmapOff = FDT_HEADER_SIZE; // 8-byte aligned; one terminating {0, 0} entry
  const structOff = rsvmapOff + 16;
  const stringsOff = structOff + bytes.length;
  const str = strings.bytes();
  const total = stringsOff + str.length;
  const out = new Uint8Array(total);
  const v = new DataView(out.buffer);
  const header = [
    FDT_MAGIC,
    total,
    structOff,
    stringsOff,
    rsvmapOff,
    VERSION,
    LAST_COMPATIBLE,
    opts.bootCpuId ?? 0,
    str.length,
    bytes.length,
  ];
  header.forEach((h, i) => v.setUint32(i * 4, h >>> 0));
  out.set(bytes, structOff);
  out.set(str, stringsOff);
  return out;
}

/** The strings block: each property name once, NUL-terminated. */
class StringTable {
  private readonly at = new Map<string, number>();
  private readonly parts: Buffer[] = [];
  private size = 0;
  offset(name: string): number {
    let o = this.at.get(name);
    if (o === undefined) {
      o = this.size;
      const b = Buffer.from(`${name}\0`, 'latin1');
      this.parts.push(b);
      this.size += b.length;
      this.at.set(name, o);
    }
    return o;
  }
  bytes(): Uint8Array {
    return Buffer.concat(this.parts);
  }
}

const bad = (why: string) => new Arm64Error('BadDeviceTree', `device tree: ${why}`);
