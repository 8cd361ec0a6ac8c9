import type { Bus, BusRegistration, Disposable } from '../../../core/bus/bus.js';
import {
  isMmioFastPathPublisher,
  type MmioFastPath,
  type MmioWriteMode,
  type SharedWord,
} from '../../../core/bus/fast-path.js';
import type { Logger } from '../../../core/logger.js';
import { MMIO_FLAG, type MmioCell, MmioTable, type MmioSlot } from './fast-path-mmio.js';

/** One device's handle: keeps what it published (offset -> slot); inert once detached. */
class DeviceMmioFastPath implements MmioFastPath {
  active = true;
  readonly published = new Map<number, { flags: number; value: number; mask?: number }>();
  constructor(
    private readonly changed: () => void,
    readonly base: bigint,
    readonly length: bigint,
    private readonly allocateCell: () => MmioCell | undefined,
  ) {}

  private usable(offset: number): boolean {
    return (
      this.active &&
      Number.isInteger(offset) &&
      offset >= 0 &&
      BigInt(offset) + 4n <= this.length &&
      this.base + BigInt(offset) + 4n <= 1n << 32n
    );
  }

  private slot(offset: number): { flags: number; value: number; mask?: number } | undefined {
    if (!this.usable(offset)) return undefined;
    let s = this.published.get(offset);
    if (!s) {
      s = { flags: 0, value: 0 };
      this.published.set(offset, s);
    }
    return s;
  }

  /** Offsets bound to a cell: setReadValue/setWriteMode leave them alone. */
  private isCell(s: { flags: number }): boolean {
    return (s.flags & (MMIO_FLAG.READ_CELL | MMIO_FLAG.CLEAR_CELL)) !== 0;
  }

  shareClearableWord(
    readOffset: number,
    clearOffset: number,
    clearMask: number,
    initial: number,
  ): SharedWord | undefined {
    if (readOffset === clearOffset || !this.usable(readOffset) || !this.usable(clearOffset)) return undefined;
    if (!Number.isInteger(clearMask) || clearMask < 0 || clearMask > 0xffff_ffff) return undefined;
    if (this.published.has(readOffset) && this.isCell(this.published.get(readOffset)!)) return undefined;
    if (this.published.has(clearOffset) && this.isCell(this.published.get(clearOffset)!)) return undefined;
    const cell = this.allocateCell();
    if (!cell) return undefined;
    cell.store(Number.isInteger(initial) ? initial : 0); // before the table points workers at it
    this.published.set(readOffset, { flags: MMIO_FLAG.READ_CELL, value: cell.index });
    this.published.set(clearOffset, { flags: MMIO_FLAG.CLEAR_CELL, value: cell.index, mask: clearMask | 0 });
    this.changed();
    return cell;
  }

  setReadValue(offset: number, value: number | undefined): void {
    const s = this.slot(offset);
    if (!s || this.isCell(s)) return;
    const ok = value !== undefined && Number.isInteger(value) && value >= 0 && value <= 0xffff_ffff;
    const flags = ok ? s.flags | MMIO_FLAG.READ : s.flags & ~MMIO_FLAG.READ;
    const v = ok ? value : 0;
    if (flags === s.flags && v === s.value) return;
    s.flags = flags;
    s.value = v;
    this.changed();
  }

  setWriteMode(offset: number, mode: MmioWriteMode): void {
    const s = this.slot(offset);
    if (!s || this.isCell(s)) return;
    const flags = mode === 'queue' ? s.flags | MMIO_FLAG.QUEUE : s.flags & ~MMIO_FLAG.QUEUE;
    if (flags === s.flags) return;
    s.flags = flags;
    this.changed();
  }
}

interface Attached {
  reg: BusRegistration;
  fp: DeviceMmioFastPath;
  handle?: Disposable;
}

/**
 * The main thread's side of the MMIO fast paths (./fast-path-mmio.ts): attaches every MMIO device
 * that publishes them, republishes the table whenever one changes or the registrations change, and
 * delivers queued MMIO writes to the Bus (FastPathHost drains the rings and calls deliver).
 */
export class MmioFastPathHost {
  readonly table = new MmioTable();
  private attached: Attached[] = [];
  private known: readonly BusRegistration[] | undefined;
  private readonly word = new Uint8Array(4);
  private readonly view = new DataView(this.word.buffer);

  constructor(
    private readonly bus: Bus,
    private readonly logger?: Logger,
  ) {}

  /** Call after the rings were drained. Cheap when the MMIO registrations did not change. */
  sync(beforeChange?: () => void): void {
    const regs = this.bus.registrations('mmio');
    const known = this.known;
    if (known && regs.length === known.length && regs.every((r, i) => r === known[i])) return;
    beforeChange?.(); // queued writes go where they would have gone before the change
    this.known = regs;
    const keep: Attached[] = [];
    for (const a of this.attached) {
      if (regs.includes(a.reg)) {
        keep.push(a);
        continue;
      }
      a.fp.active = false;
      try {
        a.handle?.dispose();
      } catch (err) {
        this.logger?.warn({ err, device: a.reg.name }, 'MMIO fast path: detach failed');
      }
    }
    this.attached = keep;
    for (const r of regs) {
      if (!isMmioFastPathPublisher(r.device) || this.attached.some((a) => a.reg === r)) continue;
      const fp = new DeviceMmioFastPath(this.publish, r.range.start.value, r.range.length, () =>
        this.table.allocateCell(),
      );
      const a: Attached = { reg: r, fp };
      this.attached.push(a);
      try {
        a.handle = r.device.attachMmioFastPath(fp);
      } catch (err) {
        fp.active = false;
        this.logger?.warn(
          { err, device: r.name },
          'MMIO fast path: device failed to attach; its accesses take the normal path',
        );
      }
    }
    this.publish();
  }

  /** Rewrites the shared table from what the active devices published. */
  private readonly publish = (): void => {
    const slots: MmioSlot[] = [];
    for (const a of this.attached) {
      if (!a.fp.active) continue;
      for (const [off, s] of a.fp.published)
        if (s.flags) slots.push({ address: Number(a.fp.base) + off, flags: s.flags, value: s.value, mask: s.mask });
    }
    if (this.table.replace(slots) < slots.length)
      this.logger?.debug({ published: slots.length }, 'MMIO fast path: table full; the rest take the normal path');
  };

  readonly deliver = (address: number, value: number): void => {
    this.view.setUint32(0, value >>> 0, true);
    try {
      this.bus.write('mmio', BigInt(address >>> 0), this.word);
    } catch (err) {
      this.logger?.error({ err, address }, 'fast path: delivering a queued MMIO write failed');
    }
  };

  get devices(): string[] {
    return this.attached.filter((a) => a.fp.active).map((a) => a.reg.name);
  }

  dispose(): void {
    for (const a of this.attached) {
      a.fp.active = false;
      try {
        a.handle?.dispose();
      } catch {
        /* going away anyway */
      }
    }
    this.attached = [];
    this.known = undefined;
    this.table.replace([]);
  }
}
