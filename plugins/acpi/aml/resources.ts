import { AcpiError } from '../errors.js';
import { concat, le } from './encoding.js';
import { buffer } from './terms.js';

/**
 * Resource descriptors (ACPI 6.4, 6.4) for _CRS/_PRS: each builder returns one descriptor's
 * bytes; resourceTemplate() wraps them in a Buffer with the end tag, as ASL's ResourceTemplate.
 */

/** ResourceTemplate() { descriptors }: a Buffer ending with the End Tag (checksum 0: "treat as valid"). */
export function resourceTemplate(descriptors: readonly Uint8Array[]): Uint8Array {
  return buffer(concat([...descriptors, Uint8Array.of(0x79, 0x00)]));
}

function checkRange(what: string, v: bigint, max: bigint): void {
  if (v < 0n || v > max)
    throw new AcpiError('InvalidValue', `${what} 0x${v.toString(16)} does not fit the descriptor`, {
      value: v.toString(),
    });
}

/** A large descriptor: tag, 16-bit length, body. */
function large(tag: number, body: readonly number[]): Uint8Array {
  return Uint8Array.from([tag, ...le(body.length, 2), ...body]);
}

/** Memory32Fixed(ReadWrite|ReadOnly, base, length). */
export function memory32Fixed(base: bigint | number, length: bigint | number, writeable = true): Uint8Array {
  const b = BigInt(base),
    n = BigInt(length);
  checkRange('Memory32Fixed base', b, 0xffff_ffffn);
  checkRange('Memory32Fixed length', n, 0xffff_ffffn);
  if (b + n > 1n << 32n)
    throw new AcpiError('InvalidValue', `Memory32Fixed 0x${b.toString(16)}+0x${n.toString(16)} crosses 4 GiB`, {
      base: b.toString(),
      length: n.toString(),
    });
  return large(0x86, [writeable ? 1 : 0, ...le(b, 4), ...le(n, 4)]);
}

/** IO(Decode16, min, max, alignment, length): a port range (16-bit decode). */
export function io(min: number, max: number, alignment: number, length: number): Uint8Array {
  checkRange('IO minimum', BigInt(min), 0xffffn);
  checkRange('IO maximum', BigInt(max), 0xffffn);
  checkRange('IO alignment', BigInt(alignment), 0xffn);
  checkRange('IO length', BigInt(length), 0xffn);
  return Uint8Array.from([0x47, 0x01, ...le(min, 2), ...le(max, 2), alignment, length]);
}

/** How an interrupt is signalled, and who owns it. */
export interface InterruptFlags {
  /** ResourceConsumer (default) or ResourceProducer. */
  readonly consumer?: boolean;
  /** Edge (default) or Level. */
  readonly edge?: boolean;
  /** ActiveLow, else ActiveHigh (default). */
  readonly activeLow?: boolean;
  /** Shared, else Exclusive (default). */
  readonly shared?: boolean;
}

/** Interrupt(consumer, Edge|Level, ActiveHigh|ActiveLow, Exclusive|Shared) { gsis }: the extended descriptor. */
export function interrupt(gsis: readonly number[], f: InterruptFlags = {}): Uint8Array {
  if (gsis.length < 1 || gsis.length > 255)
    throw new AcpiError('InvalidValue', `an Interrupt descriptor lists 1..255 interrupts, not ${gsis.length}`, {
      count: gsis.length,
    });
  for (const g of gsis) checkRange('interrupt', BigInt(g), 0xffff_ffffn);
  const flags =
    ((f.consumer ?? true) ? 1 : 0) | ((f.edge ?? true) ? 2 : 0) | (f.activeLow ? 4 : 0) | (f.shared ? 8 : 0);
  return large(0x89, [flags, gsis.length, ...gsis.flatMap((g) => le(g, 4))]);
}

/** Fields common to the Word/DWord/QWord address space descriptors. */
export interface AddressSpace {
  readonly min: bigint | number;
  readonly max: bigint | number;
  /** Defaults to 0. */
  readonly translation?: bigint | number;
  /** Defaults to max - min + 1. */
  readonly length?: bigint | number;
  /** Defaults to 0. */
  readonly granularity?: bigint | number;
  /** ResourceProducer (a bridge's window, default) or ResourceConsumer. */
  readonly consumer?: boolean;
}

/** Memory attributes of a memory address space descriptor. */
export interface MemoryAttributes {
  /** NonCacheable, Cacheable (default), WriteCombining or Prefetchable. */
  readonly cache?: 'NonCacheable' | 'Cacheable' | 'WriteCombining' | 'Prefetchable';
  /** ReadWrite (default) or ReadOnly. */
  readonly writeable?: boolean;
}

const CACHE = { NonCacheable: 0, Cacheable: 1, WriteCombining: 2, Prefetchable: 3 } as const;
const RESOURCE_TYPE = { memory: 0, io: 1, bus: 2 } as const;

/** An address space descriptor of `width` bytes per field (2, 4 or 8): MinFixed, MaxFixed, PosDecode. */
function addressSpace(tag: number, width: 2 | 4 | 8, type: number, typeFlags: number, a: AddressSpace): Uint8Array {
  const max = (1n << BigInt(8 * width)) - 1n;
  const min = BigInt(a.min),
    top = BigInt(a.max);
  const length = BigInt(a.length ?? top - min + 1n);
  const fields = [BigInt(a.granularity ?? 0), min, top, BigInt(a.translation ?? 0), length];
  const names = ['granularity', 'minimum', 'maximum', 'translation', 'length'];
  fields.forEach((v, i) => checkRange(`address space ${names[i]}`, v, max));
  if (top < min)
    throw new AcpiError('InvalidValue', `address space maximum 0x${top.toString(16)} is below its minimum`, {
      min: min.toString(),
      max: top.toString(),
    });
  const general = 0x0c | ((a.consumer ?? false) ? 1 : 0); // MinFixed | MaxFixed, positive decode
  return large(tag, [type, general, typeFlags, ...fields.flatMap((v) => le(v, width))]);
}

function memoryFlags(m: MemoryAttributes): number {
  return ((m.writeable ?? true) ? 1 : 0) | (CACHE[m.cache ?? 'Cacheable'] << 1);
}

/** WordBusNumber(...): the bus numbers a host bridge decodes. */
export function wordBusNumber(a: AddressSpace): Uint8Array {
  return addressSpace(0x88, 2, RESOURCE_TYPE.bus, 0, a);
}

/** WordIO(..., EntireRange): a port window. */
export function wordIo(a: AddressSpace): Uint8Array {
  return addressSpace(0x88, 2, RESOURCE_TYPE.io, 3, a);
}

/** DWordIO(..., EntireRange): a port window with 32-bit fields. */
export function dwordIo(a: AddressSpace): Uint8Array {
  return addressSpace(0x87, 4, RESOURCE_TYPE.io, 3, a);
}

/** DWordMemory(...): a memory window below 4 GiB. */
export function dwordMemory(a: AddressSpace & MemoryAttributes): Uint8Array {
  return addressSpace(0x87, 4, RESOURCE_TYPE.memory, memoryFlags(a), a);
}

/** QWordMemory(...): a memory window anywhere in the 64-bit space. */
export function qwordMemory(a: AddressSpace & MemoryAttributes): Uint8Array {
  return addressSpace(0x8a, 8, RESOURCE_TYPE.memory, memoryFlags(a), a);
}
