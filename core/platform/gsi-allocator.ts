import type { IrqAllocator } from './resources.js';
import type { PlatformLayout } from './layout.js';
import { PlatformError } from './errors.js';

/** Hands out IOAPIC lines in [first, last], skipping reserved ones; legacy devices claim fixed lines. */
export class GsiAllocator implements IrqAllocator {
  private readonly owners = new Map<number, string>();

  constructor(
    private readonly first: number,
    private readonly last: number,
    reserved: readonly number[] = [],
  ) {
    for (const r of reserved) this.owners.set(r, 'reserved');
  }

  /** An allocator over the platform's device lines (layout.deviceIrqs), its reserved lines never handed out. */
  static fromLayout(layout: PlatformLayout): GsiAllocator {
    const { first, last, reserved } = layout.deviceIrqs;
    return new GsiAllocator(first, last, reserved);
  }

  allocate(owner = 'device'): number {
    for (let irq = this.first; irq <= this.last; irq++) {
      if (!this.owners.has(irq)) {
        this.owners.set(irq, owner);
        return irq;
      }
    }
    throw new PlatformError('Exhausted', `no free interrupt line in ${this.first}..${this.last} for '${owner}'`, {
      owner,
    });
  }

  claim(irq: number, owner: string): number {
    if (!Number.isInteger(irq) || irq < 0 || irq > 255)
      throw new PlatformError('Invalid', `'${owner}' claims invalid interrupt line ${irq}`, { irq, owner });
    const by = this.owners.get(irq);
    if (by !== undefined)
      throw new PlatformError('Taken', `interrupt line ${irq} wanted by '${owner}' is already used by '${by}'`, {
        irq,
        owner,
        by,
      });
    this.owners.set(irq, owner);
    return irq;
  }

  /** Who holds which line, for diagnostics. */
  assignments(): ReadonlyMap<number, string> {
    return this.owners;
  }
}
