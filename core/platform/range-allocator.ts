import type { ResourceSpace, SpaceLayout } from './layout.js';
import { PlatformError } from './errors.js';

/** One held place of a space: [start, start + size), and who holds it. */
export interface HeldRange {
  readonly start: bigint;
  readonly size: bigint;
  readonly owner: string;
}

const isPowerOfTwo = (v: bigint): boolean => v > 0n && (v & (v - 1n)) === 0n;
const alignUp = (v: bigint, align: bigint): bigint => (v + align - 1n) & ~(align - 1n);

/** How a value of a space reads in messages: 'port 0x3f8', 'IRQ 4', 'GSI 24', '0xd0001000'. */
export function describePlace(space: ResourceSpace, v: bigint): string {
  switch (space) {
    case 'pio':
      return `port 0x${v.toString(16)}`;
    case 'irq':
      return `IRQ ${v}`;
    case 'msi':
      return `GSI ${v}`;
    default:
      return `0x${v.toString(16)}`;
  }
}

/** How a span of a space reads: 'IRQ 4', 'port 0x3f8-0x3ff', '0xd0001000-0xd0001fff'. */
export function describeSpan(space: ResourceSpace, start: bigint, size: bigint): string {
  if (size === 1n) return describePlace(space, start);
  const last = start + size - 1n;
  return `${describePlace(space, start)}-${space === 'irq' || space === 'msi' ? last : `0x${last.toString(16)}`}`;
}

/**
 * Places of one space, kept sorted and never overlapping. allocate() is first fit from the
 * low end of the allocation window (so, with nothing freed, places come out in ascending
 * order, as a bump allocator gives them); reserve() takes a fixed place anywhere in the range;
 * release() makes a place reusable. Errors are PlatformErrors naming the space and the holder.
 */
export class RangeAllocator {
  private readonly held: HeldRange[] = [];

  constructor(
    readonly space: ResourceSpace,
    readonly layout: SpaceLayout,
  ) {}

  /** The lowest free place of `size` aligned to `align` inside the allocation window. */
  allocate(size: bigint, align: bigint, owner: string): HeldRange {
    this.checkSize(size, owner);
    if (!isPowerOfTwo(align))
      throw new PlatformError('Invalid', `'${owner}': alignment ${align} in ${this.space} is not a power of two`, {
        space: this.space,
        owner,
        align,
      });
    const { start, end } = this.layout.alloc;
    let at = alignUp(start, align);
    for (const h of this.held) {
      if (h.start + h.size <= at) continue;
      if (h.start >= at + size) break;
      at = alignUp(h.start + h.size, align);
    }
    if (at + size > end)
      throw new PlatformError(
        'Exhausted',
        `no free ${this.space} place of ${size} (aligned to ${align}) for '${owner}' in ` +
          describeSpan(this.space, start, end - start),
        { space: this.space, owner, size, align },
      );
    return this.insert({ start: at, size, owner });
  }

  /** Takes [start, start + size) for `owner`; throws when it leaves the range or overlaps a held place. */
  reserve(start: bigint, size: bigint, owner: string): HeldRange {
    this.checkSize(size, owner);
    const { range } = this.layout;
    if (start < range.start || start + size > range.end)
      throw new PlatformError(
        'OutOfRange',
        `'${owner}' wants ${describeSpan(this.space, start, size)} outside ${this.space} ` +
          describeSpan(this.space, range.start, range.end - range.start),
        { space: this.space, owner, start, size },
      );
    const clash = this.held.find((h) => h.start < start + size && start < h.start + h.size);
    if (clash)
      throw new PlatformError(
        'Taken',
        `${describeSpan(this.space, start, size)} wanted by '${owner}' overlaps ` +
          `${describeSpan(this.space, clash.start, clash.size)} held by '${clash.owner}'`,
        { space: this.space, owner, start, size, by: clash.owner },
      );
    return this.insert({ start, size, owner });
  }

  /** Gives a place back (the object allocate/reserve returned); false when it is not held (already released). */
  release(h: HeldRange): boolean {
    const i = this.held.indexOf(h);
    if (i < 0) return false;
    this.held.splice(i, 1);
    return true;
  }

  /** The held places, lowest first. */
  list(): readonly HeldRange[] {
    return [...this.held];
  }

  private checkSize(size: bigint, owner: string): void {
    const span = this.layout.range.end - this.layout.range.start;
    if (size <= 0n || size > span)
      throw new PlatformError('Invalid', `'${owner}' asks for ${size} units of ${this.space} (1..${span})`, {
        space: this.space,
        owner,
        size,
      });
  }

  private insert(h: HeldRange): HeldRange {
    let i = this.held.length;
    while (i > 0 && this.held[i - 1].start > h.start) i--;
    this.held.splice(i, 0, h);
    return h;
  }
}
