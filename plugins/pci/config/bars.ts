import type { PciBarSpec } from '../../../core/pci/device.js';
import { PciError } from '../errors.js';
import { BAR_COUNT, PciBarBits, PciCommand, PciReg } from './registers.js';

/** Largest I/O BAR the PCI specification allows (PCI 3.0, 6.2.5.1). */
export const MAX_IO_BAR = 256n;
/** Smallest memory BAR. */
export const MIN_MEMORY_BAR = 16n;
/** Smallest I/O BAR. */
export const MIN_IO_BAR = 4n;

const U32 = 0xffff_ffffn;

/** One BAR register's reset value and writable bits: what sizing reads back follows from them. */
export interface BarRegister {
  /** Byte offset of the register in configuration space. */
  readonly offset: number;
  /** The read-only low bits (space, type, prefetchable) with address 0. */
  readonly value: number;
  /** Bits the guest may write: the address bits at and above the BAR's size. */
  readonly writable: number;
}

/**
 * The registers a BAR occupies (one, or two for a 64-bit BAR) with their flags and writable masks, so
 * that the all-ones probe reads back `~(size - 1) | flags` exactly as hardware answers it.
 */
export function barRegisters(spec: PciBarSpec): BarRegister[] {
  const offset = PciReg.BAR0 + 4 * spec.index;
  const mask = ~(spec.size - 1n); // infinite-precision two's complement: all address bits at and above size
  if (spec.kind === 'io') {
    return [{ offset, value: PciBarBits.IO, writable: Number(mask & BigInt(PciBarBits.IO_ADDRESS_MASK)) }];
  }
  const flags =
    (spec.kind === 'mmio64' ? PciBarBits.MEM_TYPE_64 : 0) | (spec.prefetchable ? PciBarBits.PREFETCHABLE : 0);
  const low: BarRegister = { offset, value: flags, writable: Number(mask & BigInt(PciBarBits.MEM_ADDRESS_MASK)) };
  if (spec.kind === 'mmio32') return [low];
  return [low, { offset: offset + 4, value: 0, writable: Number((mask >> 32n) & U32) }];
}

/** Throws PciError('InvalidBar') for a BAR list real hardware could not answer with. */
export function checkBarSpecs(specs: readonly PciBarSpec[]): void {
  const used = new Set<number>();
  for (const s of specs) {
    const bad = (why: string): never => {
      throw new PciError('InvalidBar', `BAR ${s.index} (${s.kind}, ${s.size} bytes) ${why}`, { index: s.index });
    };
    if (!Number.isInteger(s.index) || s.index < 0 || s.index >= BAR_COUNT) bad('has no BAR register');
    if (s.kind !== 'io' && s.kind !== 'mmio32' && s.kind !== 'mmio64') bad('has an unknown kind');
    if (typeof s.size !== 'bigint' || s.size <= 0n || (s.size & (s.size - 1n)) !== 0n) bad('is not a power of two');
    if (s.kind === 'io' && (s.size < MIN_IO_BAR || s.size > MAX_IO_BAR)) bad('is not 4..256 bytes (I/O)');
    if (s.kind !== 'io' && s.size < MIN_MEMORY_BAR) bad('is below 16 bytes');
    if (s.kind === 'mmio32' && s.size > 1n << 31n) bad('is over 2 GiB (32-bit)');
    if (s.kind === 'mmio64' && s.size > 1n << 62n) bad('is over 2^62 bytes');
    if (s.kind === 'io' && s.prefetchable) bad('is an I/O BAR marked prefetchable');
    const regs = s.kind === 'mmio64' ? [s.index, s.index + 1] : [s.index];
    if (regs.some((r) => r >= BAR_COUNT)) bad('needs a register after BAR 5');
    if (regs.some((r) => used.has(r))) bad('overlaps another BAR');
    regs.forEach((r) => used.add(r));
  }
}

/** Reads a function's configuration space (PciDevice.readConfig or PciConfigSpace.get). */
export type ConfigReader = (offset: number, size: 1 | 2 | 4) => number;

/**
 * The base address BAR `spec` holds now (the address bits of its register or registers), whatever
 * the command register says. `barWindow` decides whether the function decodes there.
 */
export function barBase(read: ConfigReader, spec: PciBarSpec): bigint {
  const offset = PciReg.BAR0 + 4 * spec.index;
  const low = BigInt(read(offset, 4) >>> 0);
  if (spec.kind === 'io') return low & BigInt(PciBarBits.IO_ADDRESS_MASK);
  const base = low & BigInt(PciBarBits.MEM_ADDRESS_MASK);
  return spec.kind === 'mmio64' ? (BigInt(read(offset + 4, 4) >>> 0) << 32n) | base : base;
}

/** The end (exclusive) of the address space a BAR kind can hold: 64 KiB of ports, 4 GiB or 2^64 of memory. */
export function barSpaceEnd(spec: PciBarSpec): bigint {
  return spec.kind === 'io' ? 0x1_0000n : spec.kind === 'mmio32' ? 1n << 32n : 1n << 64n;
}

/**
 * Where the function decodes BAR `spec` now, or undefined: decode of its space off in the command
 * register, base 0, or a window reaching the end of its address space (the all-ones sizing pattern
 * among them). Whether the place is acceptable (not over RAM or another window) is the bus's call.
 */
export function decodedBarBase(read: ConfigReader, spec: PciBarSpec): bigint | undefined {
  const command = read(PciReg.COMMAND, 2);
  const bit = spec.kind === 'io' ? PciCommand.IO_SPACE : PciCommand.MEMORY_SPACE;
  if ((command & bit) === 0) return undefined;
  const base = barBase(read, spec);
  if (base === 0n || base + spec.size >= barSpaceEnd(spec)) return undefined;
  return base;
}
