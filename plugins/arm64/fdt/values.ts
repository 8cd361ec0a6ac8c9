/**
 * Property values of a flattened device tree: big-endian 32-bit cells, 64-bit numbers as two cells,
 * NUL-terminated strings and string lists, the empty (boolean) property. Plus `node()`, a short way to
 * write an FdtNode.
 */
import { Arm64Error } from '../errors.js';
import type { FdtNode } from './encode.js';

/** `<a b c>`: 32-bit big-endian cells. */
export function cells(...values: number[]): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  const v = new DataView(out.buffer);
  values.forEach((x, i) => {
    if (!Number.isInteger(x) || x < 0 || x > 0xffff_ffff)
      throw new Arm64Error('BadDeviceTree', `device tree cell ${x} is not a 32-bit unsigned integer`);
    v.setUint32(i * 4, x);
  });
  return out;
}

/** 64-bit numbers, each as two cells (high, low): `reg` with #address-cells = #size-cells = 2. */
export function u64Cells(...values: bigint[]): Uint8Array {
  const words: number[] = [];
  for (const x of values) {
    if (x < 0n || x >= 1n << 64n) throw new Arm64Error('BadDeviceTree', `device tree value ${x} is not a u64`);
    words.push(Number(x >> 32n), Number(x & 0xffff_ffffn));
  }
  return cells(...words);
}

/** A NUL-terminated string. */
export function str(s: string): Uint8Array {
  return strings([s]);
}

/** A string list (`"a", "b"`): each NUL-terminated, back to back. */
export function strings(list: readonly string[]): Uint8Array {
  for (const s of list)
    if (s.includes('\0')) throw new Arm64Error('BadDeviceTree', `device tree string ${JSON.stringify(s)} has a NUL`);
  return new Uint8Array(Buffer.from(list.map((s) => `${s}\0`).join(''), 'utf8'));
}

/** The empty property (a boolean that is true by being there). */
export const EMPTY = new Uint8Array(0);

/** An FdtNode from a name, its properties (in insertion order) and its children. */
export function node(name: string, props: Record<string, Uint8Array>, children: FdtNode[] = []): FdtNode {
  return { name, props: Object.entries(props), children };
}
