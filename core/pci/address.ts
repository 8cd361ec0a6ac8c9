/**
 * A PCI function's address: segment (PCI domain), bus, device (slot) and function, as the guest
 * enumerates it. Numbers are range-checked by pciAddress(); format with formatPciAddress().
 */
export interface PciAddress {
  /** PCI segment group (domain), 0..65535; segment 0 is the only one for now. */
  readonly segment: number;
  /** Bus number, 0..255. */
  readonly bus: number;
  /** Device (slot) number, 0..31. */
  readonly device: number;
  /** Function number, 0..7. */
  readonly function: number;
}

/** Builds a PciAddress, throwing RangeError when a part is out of its range. */
export function pciAddress(segment: number, bus: number, device: number, fn: number): PciAddress {
  const check = (v: number, max: number, what: string): void => {
    if (!Number.isInteger(v) || v < 0 || v > max) throw new RangeError(`PCI ${what} ${v} is not in 0..${max}`);
  };
  check(segment, 0xffff, 'segment');
  check(bus, 0xff, 'bus');
  check(device, 31, 'device');
  check(fn, 7, 'function');
  return { segment, bus, device, function: fn };
}

/** The lspci form of an address: `0000:00:05.0`. */
export function formatPciAddress(a: PciAddress): string {
  const hex = (v: number, n: number): string => v.toString(16).padStart(n, '0');
  return `${hex(a.segment, 4)}:${hex(a.bus, 2)}:${hex(a.device, 2)}.${a.function}`;
}
