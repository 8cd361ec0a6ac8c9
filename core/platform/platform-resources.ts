import { GuestRange } from '../address.js';
import { checkPlatformLayout, type PlatformLayout, type ResourceSpace, type SpaceLayout } from './layout.js';
import { PlatformError } from './errors.js';
import { RangeAllocator, type HeldRange } from './range-allocator.js';
import type { Allocation, Resources } from './resources.js';

/** An Allocation over a RangeAllocator's held place; dispose() releases that place (once). */
class HeldAllocation implements Allocation {
  constructor(
    readonly space: ResourceSpace,
    private readonly held: HeldRange,
    private readonly from: RangeAllocator,
  ) {}
  get start(): bigint {
    return this.held.start;
  }
  get size(): bigint {
    return this.held.size;
  }
  get owner(): string {
    return this.held.owner;
  }
  get range(): GuestRange {
    return GuestRange.of(this.held.start, this.held.size);
  }
  get number(): number {
    return Number(this.held.start);
  }
  dispose(): void {
    this.from.release(this.held);
  }
}

/**
 * The Resources service over a PlatformLayout. The layout is read on first use (the arch
 * plugin registers it after the kernel created this service); its fixed reservations are
 * taken then. One RangeAllocator per space.
 */
export class PlatformResources implements Resources {
  private spaces?: Map<ResourceSpace, RangeAllocator>;
  private cached?: PlatformLayout;

  /** `layout`: the layout, or a function giving it on first use. */
  constructor(private readonly source: PlatformLayout | (() => PlatformLayout)) {}

  get layout(): PlatformLayout {
    this.cached ??= checkPlatformLayout(typeof this.source === 'function' ? this.source() : this.source);
    return this.cached;
  }

  allocate(space: ResourceSpace, req: { owner: string; size?: bigint; align?: bigint }): Allocation {
    const s = this.space(space);
    return new HeldAllocation(space, s.allocate(req.size ?? 1n, req.align ?? 1n, req.owner), s);
  }

  reserve(space: ResourceSpace, start: bigint, req: { owner: string; size?: bigint }): Allocation {
    const s = this.space(space);
    return new HeldAllocation(space, s.reserve(start, req.size ?? 1n, req.owner), s);
  }

  allocations(space: ResourceSpace): readonly Allocation[] {
    const s = this.space(space);
    return s.list().map((h) => new HeldAllocation(space, h, s));
  }

  window(space: ResourceSpace): SpaceLayout {
    return this.space(space).layout;
  }

  legacyIrq(name: string): number {
    const irq = this.layout.legacyIrqs[name];
    if (irq === undefined)
      throw new PlatformError(
        'Invalid',
        `this platform has no legacy interrupt line '${name}' (it knows: ${
          Object.keys(this.layout.legacyIrqs).join(', ') || 'none'
        })`,
        { name },
      );
    return irq;
  }

  private space(space: ResourceSpace): RangeAllocator {
    if (!this.spaces) {
      const layout = this.layout;
      const spaces = new Map<ResourceSpace, RangeAllocator>();
      for (const [name, l] of Object.entries(layout.spaces) as [ResourceSpace, SpaceLayout][])
        spaces.set(name, new RangeAllocator(name, l));
      for (const r of layout.reserved) this.reserveFixed(spaces, r.space, r.start, r.size, r.owner);
      this.spaces = spaces;
    }
    const s = this.spaces.get(space);
    if (!s) throw new PlatformError('Invalid', `unknown resource space '${String(space)}'`, { space });
    return s;
  }

  private reserveFixed(
    spaces: Map<ResourceSpace, RangeAllocator>,
    space: ResourceSpace,
    start: bigint,
    size: bigint,
    owner: string,
  ): void {
    const s = spaces.get(space);
    if (!s) throw new PlatformError('Invalid', `platform layout reserves in unknown space '${space}'`, { space });
    s.reserve(start, size, owner);
  }
}
