import type { Bus } from '../../core/bus/bus.js';
import { CONFIG_ADDRESS_PORT } from './config-access.js';

/** Little-endian bytes of `value`. */
function bytes(value: bigint | number, size: number): Uint8Array {
  const d = new Uint8Array(size);
  let v = BigInt(value);
  for (let i = 0; i < size; i++, v >>= 8n) d[i] = Number(v & 0xffn);
  return d;
}

function value(d: Uint8Array): bigint {
  return d.reduceRight((v, b) => (v << 8n) | BigInt(b), 0n);
}

/**
 * The guest's side of a VMM bus for tests: port and memory accesses of any width, and PCI configuration
 * accesses through mechanism #1 (ports 0xCF8/0xCFC) or through an ECAM window.
 */
export class GuestBusDriver {
  constructor(
    readonly bus: Bus,
    readonly ecamBase?: bigint,
  ) {}

  /** A read of `size` bytes in `space`; unclaimed addresses read all ones (the bus's answer). */
  read(space: 'pio' | 'mmio', address: bigint | number, size: number): bigint {
    const d = new Uint8Array(size);
    this.bus.read(space, BigInt(address), d);
    return value(d);
  }

  /** A write of `size` bytes of `v`. */
  write(space: 'pio' | 'mmio', address: bigint | number, size: number, v: bigint | number): void {
    this.bus.write(space, BigInt(address), bytes(v, size));
  }

  /** A configuration read through 0xCF8/0xCFC (the offset's low bits pick the data port). */
  cf8Read(dev: number, fn: number, offset: number, size: number, bus = 0): number {
    this.write('pio', CONFIG_ADDRESS_PORT, 4, cf8Address(bus, dev, fn, offset));
    return Number(this.read('pio', 0xcfc + (offset & 3), size));
  }

  /** A configuration write through 0xCF8/0xCFC. */
  cf8Write(dev: number, fn: number, offset: number, size: number, v: number, bus = 0): void {
    this.write('pio', CONFIG_ADDRESS_PORT, 4, cf8Address(bus, dev, fn, offset));
    this.write('pio', 0xcfc + (offset & 3), size, v);
  }

  /** A configuration read through ECAM. */
  ecamRead(dev: number, fn: number, offset: number, size: number, bus = 0): number {
    return Number(this.read('mmio', this.ecam(bus, dev, fn, offset), size));
  }

  /** A configuration write through ECAM. */
  ecamWrite(dev: number, fn: number, offset: number, size: number, v: number, bus = 0): void {
    this.write('mmio', this.ecam(bus, dev, fn, offset), size, v);
  }

  private ecam(bus: number, dev: number, fn: number, offset: number): bigint {
    if (this.ecamBase === undefined) throw new Error('no ECAM window given');
    return this.ecamBase + BigInt((bus << 20) | (dev << 15) | (fn << 12) | offset);
  }
}

/** CONFIG_ADDRESS for mechanism #1: enable bit, bus, device, function, dword register. */
export function cf8Address(bus: number, dev: number, fn: number, offset: number): number {
  return (0x8000_0000 | (bus << 16) | (dev << 11) | (fn << 8) | (offset & 0xfc)) >>> 0;
}
