import { GuestRange } from '../address.js';
import type { MmioAllocator } from './resources.js';
import type { PlatformLayout } from './layout.js';
import { PlatformError } from './errors.js';

/** Bump allocator for device MMIO windows in [start, end), aligned as asked. */
export class MmioWindowAllocator implements MmioAllocator {
  private next: bigint;
  private readonly given: { range: GuestRange; owner: string }[] = [];

  constructor(
    private readonly start: bigint,
    private readonly end: bigint,
  ) {
    this.next = start;
  }

  /** An allocator over the platform's device MMIO window (layout.mmio32). */
  static fromLayout(layout: PlatformLayout): MmioWindowAllocator {
    return new MmioWindowAllocator(layout.mmio32.start, layout.mmio32.end);
  }

  allocate(size: bigint, align: bigint, owner: string): GuestRange {
    if (size <= 0n)
      throw new PlatformError('Invalid', `'${owner}' asks for an MMIO window of ${size} bytes`, { owner });
    if (align <= 0n || (align & (align - 1n)) !== 0n)
      throw new PlatformError('Invalid', `'${owner}': alignment ${align} is not a power of two`, { owner });
    const base = (this.next + align - 1n) & ~(align - 1n);
    if (base + size > this.end) {
      throw new PlatformError(
        'Exhausted',
        `no room for a 0x${size.toString(16)}-byte MMIO window for '${owner}' below 0x${this.end.toString(16)}`,
        { owner },
      );
    }
    this.next = base + size;
    const range = GuestRange.of(base, size);
    this.given.push({ range, owner });
    return range;
  }

  allocations(): readonly { range: GuestRange; owner: string }[] {
    return this.given;
  }
}
