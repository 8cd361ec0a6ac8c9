import type { Disposable } from '../../core/bus/bus.js';
import type { PciBarSpec } from '../../core/pci/device.js';
import type { MsixTable } from '../pci/msix.js';
import type { RefusalLog } from '../pci/refusals.js';
import type { VfioDeviceHandle, VfioMapping, VfioRegionInfo } from './kernel.js';
import type { DeviceMemorySlots } from './slots.js';

const PAGE = 0x1000n;
const down = (v: bigint) => v & ~(PAGE - 1n);
const up = (v: bigint) => (v + PAGE - 1n) & ~(PAGE - 1n);

/** A part of a BAR mapped from the device fd, put into the guest while the BAR is decoded. */
interface DirectPart {
  readonly offset: bigint;
  readonly mapping: VfioMapping;
  slot?: Disposable;
}

/**
 * The BARs of a passed-through function on the guest's side. Parts VFIO lets us mmap go straight into the
 * guest as memory slots wherever the guest places the BAR (no exit per access), except the pages that hold
 * the MSI-X table and PBA, which stay trapped: table and PBA accesses are the emulated MsixTable's, other
 * bytes of those pages and BARs that cannot be mmapped (I/O, sub-page) go to the device with pread/pwrite.
 * An access past the region reads all ones and writes nothing (logged, rate limited).
 */
export class VfioBars implements Disposable {
  private readonly direct = new Map<number, DirectPart[]>();

  constructor(
    private readonly id: string,
    private readonly device: VfioDeviceHandle,
    private readonly regions: ReadonlyMap<number, VfioRegionInfo>,
    specs: readonly PciBarSpec[],
    private readonly msix: MsixTable | undefined,
    private readonly refusals: RefusalLog,
    private readonly slots: DeviceMemorySlots | undefined,
  ) {
    if (!slots) return;
    for (const spec of specs) {
      const r = regions.get(spec.index);
      if (!r || spec.kind === 'io') continue;
      const parts: DirectPart[] = [];
      for (const area of r.mmapAreas)
        for (const piece of this.withoutTrapped(spec.index, area.offset, area.offset + area.size)) {
          if (piece.start % PAGE !== 0n || piece.end - piece.start < PAGE || (piece.end - piece.start) % PAGE !== 0n)
            continue; // sub-page: trapped
          parts.push({ offset: piece.start, mapping: device.mmap(r.offset + piece.start, piece.end - piece.start) });
        }
      if (parts.length > 0) this.direct.set(spec.index, parts);
    }
  }

  /** The page ranges of BAR `bar` that must trap (MSI-X table and PBA), page aligned. */
  trappedPages(bar: number): { start: bigint; end: bigint }[] {
    const out: { start: bigint; end: bigint }[] = [];
    const m = this.msix;
    if (!m) return out;
    for (const r of [m.tableRegion, m.pbaRegion])
      if (r.bar === bar) out.push({ start: down(r.offset), end: up(r.offset + r.size) });
    return out;
  }

  private withoutTrapped(bar: number, start: bigint, end: bigint): { start: bigint; end: bigint }[] {
    let pieces = [{ start: up(start), end: down(end) }];
    for (const t of this.trappedPages(bar))
      pieces = pieces.flatMap((p) =>
        t.end <= p.start || t.start >= p.end
          ? [p]
          : [
              { start: p.start, end: t.start },
              { start: t.end, end: p.end },
            ].filter((x) => x.end > x.start),
      );
    return pieces;
  }

  /** Mapped parts of BAR `bar` (offset, size) for tests and logs. */
  directParts(bar: number): { offset: bigint; size: bigint; inGuest: boolean }[] {
    return (this.direct.get(bar) ?? []).map((p) => ({ offset: p.offset, size: p.mapping.size, inGuest: !!p.slot }));
  }

  /** The bus placed BAR `bar` at `address` (or took it away): move its memory slots. */
  barMapped(bar: number, address: bigint | undefined): void {
    for (const p of this.direct.get(bar) ?? []) {
      p.slot?.dispose();
      p.slot = undefined;
      if (address !== undefined) {
        try {
          p.slot = this.slots!.map(address + p.offset, p.mapping.size, p.mapping.hostAddress);
        } catch (err) {
          this.refuse(`cannot map BAR ${bar} +0x${p.offset.toString(16)} into the guest (trapped instead)`, err);
        }
      }
    }
  }

  /** A trapped guest read inside BAR `bar`. */
  read(bar: number, offset: bigint, data: Uint8Array): void {
    const m = this.msix;
    if (m && this.inside(m.tableRegion, bar, offset, data.length))
      return m.readTable(offset - m.tableRegion.offset, data);
    if (m && this.inside(m.pbaRegion, bar, offset, data.length)) return m.readPba(offset - m.pbaRegion.offset, data);
    const r = this.regions.get(bar);
    if (!r || offset < 0n || offset + BigInt(data.length) > r.size) {
      data.fill(0xff);
      return this.refuse(`read of ${data.length} bytes at BAR ${bar} +0x${offset.toString(16)} is outside the region`);
    }
    try {
      this.device.read(r.offset + offset, data);
    } catch (err) {
      data.fill(0xff);
      this.refuse(`BAR ${bar} read failed`, err);
    }
  }

  /** A trapped guest write inside BAR `bar`. */
  write(bar: number, offset: bigint, data: Uint8Array): void {
    const m = this.msix;
    if (m && this.inside(m.tableRegion, bar, offset, data.length))
      return m.writeTable(offset - m.tableRegion.offset, data);
    if (m && this.inside(m.pbaRegion, bar, offset, data.length)) return; // read only
    const r = this.regions.get(bar);
    if (!r || offset < 0n || offset + BigInt(data.length) > r.size)
      return this.refuse(`write of ${data.length} bytes at BAR ${bar} +0x${offset.toString(16)} is outside the region`);
    try {
      this.device.write(r.offset + offset, data);
    } catch (err) {
      this.refuse(`BAR ${bar} write failed`, err);
    }
  }

  private inside(r: { bar: number; offset: bigint; size: bigint }, bar: number, offset: bigint, n: number): boolean {
    return r.bar === bar && offset < r.offset + r.size && offset + BigInt(n) > r.offset;
  }

  private refuse(message: string, err?: unknown): void {
    this.refusals.refuse(
      `vfio-bar:${this.id}`,
      `${this.id}: ${message}`,
      err === undefined ? {} : { err: String(err) },
    );
  }

  /** Takes every slot out of the guest and unmaps the device memory. */
  dispose(): void {
    for (const parts of this.direct.values())
      for (const p of parts) {
        p.slot?.dispose();
        p.slot = undefined;
        p.mapping.unmap();
      }
    this.direct.clear();
  }
}
