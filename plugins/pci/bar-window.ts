import { GuestRange } from '../../core/address.js';
import type { Bus, Disposable } from '../../core/bus/bus.js';
import type { PciBarSpec, PciDevice } from '../../core/pci/device.js';
import type { ResourceSpace } from '../../core/platform/layout.js';
import type { Allocation, Resources } from '../../core/platform/resources.js';
import type { RefusalLog } from './refusals.js';

/** Memory BARs are placed on page boundaries and hold at least a page (the guest maps them page by page). */
export const PAGE = 0x1000n;

/**
 * One BAR of a plugged function on the VMM's bus. `held` is the place the BAR's registers point at, as
 * held in the Resources service (placed at plug time like firmware would, then wherever the guest moved
 * it), so nothing else is given that place; `mapped` is the bus registration while the function decodes
 * there. update() follows the registers after each configuration write: a new place is taken through
 * Resources.reserve, so a place over RAM or outside the platform's windows (OutOfRange) or over another
 * window (Taken) is refused: the BAR stays unmapped and one rate-limited line says so.
 */
export class BarWindow implements Disposable {
  private held: Allocation | undefined;
  private mapped: { base: bigint; registration: Disposable } | undefined;
  /** The place last refused: asked again (any later configuration write re-reads it) it stays refused, unlogged. */
  private refused: bigint | undefined;

  constructor(
    private readonly device: PciDevice,
    readonly spec: PciBarSpec,
    private readonly owner: string,
    private readonly deps: { bus: Bus; resources: Resources; refusals: RefusalLog },
  ) {}

  /** The resource space a BAR kind is first placed in. */
  get placementSpace(): ResourceSpace {
    return this.spec.kind === 'io' ? 'pio' : this.spec.kind;
  }

  /** Takes a free place (the firmware's assignment) and returns its base. */
  place(): bigint {
    const mem = this.spec.kind !== 'io';
    const size = mem && this.spec.size < PAGE ? PAGE : this.spec.size;
    this.held = this.deps.resources.allocate(this.placementSpace, { owner: this.owner, size, align: size });
    return this.held.start;
  }

  /** Where the BAR decodes now (undefined: not mapped). */
  get base(): bigint | undefined {
    return this.mapped?.base;
  }

  /** Brings the bus registration in line with `want` (the decoded base, or undefined); true when it changed. */
  update(want: bigint | undefined): boolean {
    if (want === this.mapped?.base) return false;
    const wasMapped = this.mapped !== undefined;
    this.unmap();
    if (want === undefined) this.refused = undefined;
    if (want === undefined || want === this.refused) return wasMapped;
    this.refused = undefined;
    if (!this.hold(want)) return wasMapped;
    const space = this.spec.kind === 'io' ? 'pio' : 'mmio';
    const name = `${this.owner}`;
    try {
      const device = this.device;
      const index = this.spec.index;
      const registration = this.deps.bus.register(
        space,
        GuestRange.of(want, this.spec.size),
        { read: (o, d) => device.readBar(index, o, d), write: (o, d) => device.writeBar(index, o, d) },
        name,
      );
      this.mapped = { base: want, registration };
      return true;
    } catch (err) {
      this.refuse(want, err);
      return wasMapped;
    }
  }

  /** Takes [want, want + size) unless this BAR already holds it; false (logged) when refused. */
  private hold(want: bigint): boolean {
    const h = this.held;
    if (h && h.start <= want && want + this.spec.size <= h.start + h.size) return true;
    const space = this.spaceAt(want);
    if (!space) {
      this.refuse(want, new Error('outside the platform windows for this BAR kind (RAM or fixed devices)'));
      return false;
    }
    try {
      const next = this.deps.resources.reserve(space, want, { owner: this.owner, size: this.spec.size });
      h?.dispose();
      this.held = next;
      return true;
    } catch (err) {
      this.refuse(want, err);
      return false;
    }
  }

  /** The space whose range holds [base, base + size) for this BAR kind. */
  private spaceAt(base: bigint): ResourceSpace | undefined {
    const spaces: ResourceSpace[] = this.spec.kind === 'io' ? ['pio'] : ['mmio32', 'mmio64'];
    if (this.spec.kind === 'mmio32') spaces.pop();
    return spaces.find((s) => {
      const r = this.deps.resources.window(s).range;
      return base >= r.start && base + this.spec.size <= r.end;
    });
  }

  private refuse(base: bigint, err: unknown): void {
    this.refused = base;
    const msg = err instanceof Error ? err.message : String(err);
    this.deps.refusals.refuse(
      `bar:${this.owner}`,
      `${this.owner}: BAR ${this.spec.index} (${this.spec.kind}, ${this.spec.size} bytes) left unmapped at ` +
        `0x${base.toString(16)}: ${msg}`,
      { bar: this.spec.index },
    );
  }

  private unmap(): void {
    this.mapped?.registration.dispose();
    this.mapped = undefined;
  }

  /** Unmaps and frees the held place (unplug). */
  dispose(): void {
    this.unmap();
    this.held?.dispose();
    this.held = undefined;
  }
}
