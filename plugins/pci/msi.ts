import type { MsiGroup, MsiMessage } from '../../core/interrupts/interrupts.js';
import type { PciCapability, PciConfigSpace } from './config/space.js';
import { PciCapId } from './config/registers.js';
import { PciError } from './errors.js';
import type { RefusalLog } from './refusals.js';

/** MSI Message Control bits (PCI 3.0, 6.8.1.3). */
export const MsiControl = {
  ENABLE: 1 << 0,
  /** Bits 3:1: log2 of the vectors the function asks for (read only). */
  MMC_SHIFT: 1,
  /** Bits 6:4: log2 of the vectors the guest granted. */
  MME_SHIFT: 4,
  ADDR64: 1 << 7,
  PER_VECTOR_MASK: 1 << 8,
} as const;

/** What an MSI capability offers. */
export interface MsiOptions {
  /** Vectors: 1, 2, 4, 8, 16 or 32. */
  readonly vectors: number;
  /** 64-bit message address (default true). */
  readonly addr64?: boolean;
  /** Per-vector mask and pending registers (default true). */
  readonly perVectorMask?: boolean;
  /** Place the capability at this offset, outside the space's own list (PciConfigSpace.addCapability `at`). */
  readonly capOffset?: number;
}

/** Both message parts equal (or both absent). */
export function sameMessage(a: MsiMessage | undefined, b: MsiMessage | undefined): boolean {
  return a === b || (a !== undefined && b !== undefined && a.address === b.address && a.data === b.data);
}

/**
 * The MSI capability (id 0x05) of a configuration space, delivering through an MsiGroup of the
 * Interrupts service: the guest's enable bit, granted vector count, address, data and per-vector masks
 * become the group's messages and masks after each configuration write; the pending register reads the
 * group's pending bits. Vector i carries `data | i` (the low bits a multi-message grant frees).
 * Connect the group when the function is plugged in (its requester id is known then).
 */
export class MsiCapability {
  readonly cap: PciCapability;
  readonly vectors: number;
  private readonly log2: number;
  private readonly addr64: boolean;
  private readonly perVectorMask: boolean;
  private group: MsiGroup | undefined;

  constructor(
    space: PciConfigSpace,
    opts: MsiOptions,
    private readonly refusals?: RefusalLog,
  ) {
    this.log2 = Math.log2(opts.vectors);
    if (!Number.isInteger(this.log2) || this.log2 < 0 || this.log2 > 5)
      throw new PciError('InvalidValue', `MSI vectors ${opts.vectors} is not 1, 2, 4, 8, 16 or 32`);
    this.vectors = opts.vectors;
    this.addr64 = opts.addr64 ?? true;
    this.perVectorMask = opts.perVectorMask ?? true;
    const length = 10 + (this.addr64 ? 4 : 0) + (this.perVectorMask ? 10 : 0);
    this.cap = space.addCapability(PciCapId.MSI, length, opts.capOffset);
    const control =
      (this.log2 << MsiControl.MMC_SHIFT) |
      (this.addr64 ? MsiControl.ADDR64 : 0) |
      (this.perVectorMask ? MsiControl.PER_VECTOR_MASK : 0);
    this.cap.define(2, 2, control, { writable: MsiControl.ENABLE | (7 << MsiControl.MME_SHIFT) });
    this.cap.define(4, 4, 0, { writable: 0xffff_fffc });
    if (this.addr64) this.cap.define(8, 4, 0, { writable: 0xffff_ffff });
    this.cap.define(this.dataOffset, 2, 0, { writable: 0xffff });
    if (this.perVectorMask) {
      const bits = this.vectors === 32 ? 0xffff_ffff : 2 ** this.vectors - 1;
      this.cap.define(this.dataOffset + 4, 4, 0, { writable: bits });
      this.cap.define(this.dataOffset + 8, 4, 0);
    }
    this.cap.watch({ onWrite: () => this.sync(), onRead: () => this.refreshPending() });
  }

  private get dataOffset(): number {
    return this.addr64 ? 12 : 8;
  }

  /** Message Control's enable bit. */
  get enabled(): boolean {
    return (this.cap.get(2, 2) & MsiControl.ENABLE) !== 0;
  }

  /** Vectors the guest enabled (0 while MSI is off). */
  get enabledVectors(): number {
    if (!this.enabled) return 0;
    const mme = (this.cap.get(2, 2) >> MsiControl.MME_SHIFT) & 7;
    return 1 << Math.min(mme, this.log2);
  }

  /** The message vector `i` sends now (undefined while it is not enabled). */
  message(i: number): MsiMessage | undefined {
    if (i >= this.enabledVectors) return undefined;
    const low = BigInt(this.cap.get(4, 4) >>> 0);
    const address = this.addr64 ? (BigInt(this.cap.get(8, 4) >>> 0) << 32n) | low : low;
    const count = this.enabledVectors;
    return { address, data: (this.cap.get(this.dataOffset, 2) & ~(count - 1)) | i };
  }

  /** Delivers through `group` (at least `vectors` vectors) from now on; the current registers apply at once. */
  connect(group: MsiGroup): void {
    if (group.size < this.vectors)
      throw new PciError('InvalidValue', `MSI group of ${group.size} vectors is smaller than ${this.vectors}`);
    this.group = group;
    this.sync();
  }

  /** Raises vector `i` (pending while masked or disabled; false without a connected group). */
  trigger(i: number): boolean {
    if (!this.group || i < 0 || i >= this.vectors) return false;
    this.group.trigger(i);
    return true;
  }

  private masked(i: number): boolean {
    return this.perVectorMask && ((this.cap.get(this.dataOffset + 4, 4) >>> i) & 1) === 1;
  }

  /** Brings the group in line with the registers (messages, masks). */
  sync(): void {
    const g = this.group;
    if (!g) return;
    for (let i = 0; i < this.vectors; i++) {
      const message = this.message(i);
      try {
        if (message === undefined || this.masked(i)) {
          if (!g.vector(i).masked) g.mask(i);
          continue;
        }
        if (!sameMessage(g.vector(i).message, message)) g.update(i, message);
        if (g.vector(i).masked) g.unmask(i);
      } catch (err) {
        g.mask(i);
        this.refusals?.refuse(`msi:${g.owner}`, `${g.owner}: MSI vector ${i} refused`, { err: String(err) });
      }
    }
  }

  private refreshPending(): void {
    if (!this.perVectorMask || !this.group) return;
    let bits = 0;
    for (let i = 0; i < this.vectors; i++) if (this.group.pending(i)) bits |= 1 << i;
    this.cap.set(this.dataOffset + 8, 4, bits >>> 0);
  }
}
