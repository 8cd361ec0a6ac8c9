/**
 * Reads a flattened device tree back into FdtNodes (every offset and length checked against the blob):
 * what the tests use to look at what the machine built, and a check that a blob is well-formed.
 */
import { Arm64Error } from '../errors.js';
import { FDT_HEADER_SIZE, FDT_MAGIC, FDT_TOKEN, type FdtNode } from './encode.js';

/** A decoded blob: the root node and the header's boot CPU id. */
export interface DecodedFdt {
  root: FdtNode;
  bootCpuId: number;
}

/** Decodes a version ≥ 16 blob; throws Arm64Error('BadDeviceTree') on anything malformed. */
export function decodeFdt(blob: Uint8Array): DecodedFdt {
  const bad = (why: string) => new Arm64Error('BadDeviceTree', `device tree blob: ${why}`);
  if (blob.length < FDT_HEADER_SIZE) throw bad('shorter than its header');
  const v = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  const h = (i: number) => v.getUint32(i * 4);
  if (h(0) !== FDT_MAGIC) throw bad(`bad magic 0x${h(0).toString(16)}`);
  const [total, structOff, stringsOff, , version, , bootCpuId, stringsSize, structSize] = [
    h(1),
    h(2),
    h(3),
    h(4),
    h(5),
    h(6),
    h(7),
    h(8),
    h(9),
  ];
  if (total > blob.length) throw bad(`totalsize ${total} exceeds the ${blob.length} bytes given`);
  if (version < 16) throw bad(`version ${version} is older than 16`);
  if (structOff + structSize > total || stringsOff + stringsSize > total) throw bad('a block lies outside the blob');
  let p = structOff;
  const end = structOff + structSize;
  const u32 = () => {
    if (p + 4 > end) throw bad('the structure block ends inside a token');
    const x = v.getUint32(p);
    p += 4;
    return x;
  };
  const cstr = (from: number, limit: number) => {
    let e = from;
    while (e < limit && blob[e] !== 0) e++;
    if (e >= limit) throw bad('an unterminated string');
    return { s: Buffer.from(blob.subarray(from, e)).toString('latin1'), next: e + 1 };
  };
  const align = () => {
    p = (p + 3) & ~3;
  };
  const readNode = (): FdtNode => {
    const { s: name, next } = cstr(p, end);
    p = next;
    align();
    const props: Array<readonly [string, Uint8Array]> = [];
    const children: FdtNode[] = [];
    for (;;) {
      const tok = u32();
      if (tok === FDT_TOKEN.NOP) continue;
      if (tok === FDT_TOKEN.END_NODE) return { name, props, children };
      if (tok === FDT_TOKEN.BEGIN_NODE) children.push(readNode());
      else if (tok === FDT_TOKEN.PROP) {
        const len = u32(),
          nameOff = u32();
        if (p + len > end) throw bad('a property value runs past the structure block');
        if (nameOff >= stringsSize) throw bad('a property name offset lies outside the strings block');
        const pname = cstr(stringsOff + nameOff, stringsOff + stringsSize).s;
        props.push([pname, blob.slice(p, p + len)]);
        p += len;
        align();
      } else throw bad(`unexpected token ${tok} at offset ${p - 4}`);
    }
  };
  while (u32() === FDT_TOKEN.NOP);
  p -= 4;
  if (u32() !== FDT_TOKEN.BEGIN_NODE) throw bad('the structure block does not start with a node');
  const root = readNode();
  if (u32() !== FDT_TOKEN.END) throw bad('no FDT_END after the root node');
  return { root, bootCpuId };
}

/** The node at `path` ('/cpus/cpu@0'), or undefined. */
export function findNode(root: FdtNode, path: string): FdtNode | undefined {
  let cur: FdtNode | undefined = root;
  for (const part of path.split('/').filter(Boolean)) cur = cur?.children.find((c) => c.name === part);
  return cur;
}

/** A property's value as big-endian u32 cells (undefined when missing). */
export function propCells(n: FdtNode | undefined, name: string): number[] | undefined {
  const b = n?.props.find(([k]) => k === name)?.[1];
  if (!b) return undefined;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return Array.from({ length: b.length >> 2 }, (_, i) => dv.getUint32(i * 4));
}

/** A property's value as a string list (undefined when missing). */
export function propStrings(n: FdtNode | undefined, name: string): string[] | undefined {
  const b = n?.props.find(([k]) => k === name)?.[1];
  if (!b) return undefined;
  return Buffer.from(b).toString('utf8').replace(/\0$/, '').split('\0');
}
