import { addressOf } from '../../core/native/libc.js';

/**
 * A zeroed buffer whose first byte sits on an `align`-byte host address, for O_DIRECT.
 * V8 never moves an ArrayBuffer's backing store, so the alignment holds for its life.
 */
export function alignedBuffer(length: number, align: number): Uint8Array {
  const raw = new Uint8Array(length + align);
  const addr = addressOf(raw);
  const skip = Number((BigInt(align) - (addr % BigInt(align))) % BigInt(align));
  return raw.subarray(skip, skip + length);
}
