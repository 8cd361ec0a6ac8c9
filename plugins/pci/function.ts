import type { Disposable } from '../../core/bus/bus.js';
import type { PciBarSpec, PciDevice, PciFunctionContext } from '../../core/pci/device.js';
import type { PciConfigSpace } from './config/space.js';
import { PciReg } from './config/registers.js';
import { PciError } from './errors.js';
import type { BarRegion, BarRegionHandler } from './msix.js';

/**
 * A PciDevice built from a PciConfigSpace: configuration accesses go to the space, BAR accesses to the
 * regions the function serves (addBarRegion: an MSI-X table, virtio structures; bytes of a BAR outside
 * every region read 0 and ignore writes), and INTx follows setIntx() through the line the bus wired
 * (the status register's Interrupt Status bit and the command register's Interrupt Disable honoured;
 * with a resampled line the level is asserted again after the guest's EOI while still set).
 * Device plugins extend it (override plugged/unplugged and call super) or wrap it.
 */
export class PciFunction implements PciDevice {
  private readonly regions: BarRegion[] = [];
  private readonly mapped = new Map<number, bigint>();
  private readonly mapListeners = new Set<(index: number, address: bigint | undefined) => void>();
  private ctx: PciFunctionContext | undefined;
  private intxLevel = false;
  private resample: Disposable | undefined;
  private commandWatch: Disposable;

  constructor(
    readonly id: string,
    readonly config: PciConfigSpace,
  ) {
    this.commandWatch = config.watch(PciReg.COMMAND, 2, { onWrite: () => this.driveIntx() });
  }

  /** Bytes of configuration space. */
  get configSize(): 256 | 4096 {
    return this.config.size;
  }

  /** The BARs the configuration space declares. */
  get bars(): readonly PciBarSpec[] {
    return this.config.bars;
  }

  /** What the bus said when it plugged the function in (undefined before, and after unplug). */
  get context(): PciFunctionContext | undefined {
    return this.ctx;
  }

  /** Serves `region` (inside a declared BAR, not overlapping another region); dispose() stops serving it. */
  addBarRegion(region: BarRegion): Disposable;
  addBarRegion(bar: number, offset: bigint, size: bigint, handler: BarRegionHandler): Disposable;
  addBarRegion(a: BarRegion | number, offset?: bigint, size?: bigint, handler?: BarRegionHandler): Disposable {
    const r: BarRegion = typeof a === 'number' ? { bar: a, offset: offset!, size: size!, handler: handler! } : a;
    const spec = this.bars.find((b) => b.index === r.bar);
    if (!spec || r.offset < 0n || r.size <= 0n || r.offset + r.size > spec.size)
      throw new PciError('InvalidValue', `${this.id}: region at ${r.offset} (+${r.size}) is not inside BAR ${r.bar}`);
    for (const o of this.regions)
      if (o.bar === r.bar && r.offset < o.offset + o.size && o.offset < r.offset + r.size)
        throw new PciError('InvalidValue', `${this.id}: BAR ${r.bar} region at ${r.offset} overlaps another`);
    this.regions.push(r);
    return { dispose: () => void this.regions.splice(this.regions.indexOf(r) >>> 0, 1) };
  }

  /** Calls `listener` after each barMapped (BAR index, guest address or undefined). */
  onBarMapped(listener: (index: number, address: bigint | undefined) => void): Disposable {
    this.mapListeners.add(listener);
    return { dispose: () => this.mapListeners.delete(listener) };
  }

  /** Where BAR `index` is mapped now (undefined: not decoding). */
  barMappedAt(index: number): bigint | undefined {
    return this.mapped.get(index);
  }

  plugged(ctx: PciFunctionContext): void {
    this.ctx = ctx;
    this.resample = ctx.intx?.onResample(() => this.driveIntx());
  }

  readConfig(offset: number, size: 1 | 2 | 4): number {
    return this.config.read(offset, size);
  }

  writeConfig(offset: number, size: 1 | 2 | 4, value: number): void {
    this.config.write(offset, size, value);
  }

  readBar(index: number, offset: bigint, data: Uint8Array): void {
    const r = this.regionAt(index, offset, data.length);
    if (r) r.handler.read(offset - r.offset, data);
    else data.fill(0);
  }

  writeBar(index: number, offset: bigint, data: Uint8Array): void {
    const r = this.regionAt(index, offset, data.length);
    if (r) r.handler.write(offset - r.offset, data);
  }

  barMapped(index: number, address: bigint | undefined): void {
    if (address === undefined) this.mapped.delete(index);
    else this.mapped.set(index, address);
    for (const l of [...this.mapListeners]) l(index, address);
  }

  /**
   * Sets the function's INTx state: the status register's Interrupt Status bit follows `level`; the
   * line is asserted while it is set and the guest has not disabled INTx in the command register.
   */
  setIntx(level: boolean): void {
    this.intxLevel = level;
    this.config.setInterruptStatus(level);
    this.driveIntx();
  }

  /** The INTx state last set (the status register's Interrupt Status bit). */
  get intxAsserted(): boolean {
    return this.intxLevel;
  }

  unplugged(): void | Promise<void> {
    this.resample?.dispose();
    this.resample = undefined;
    this.ctx = undefined;
    this.mapped.clear();
  }

  /** Stops watching the command register (for a function thrown away without being plugged). */
  dispose(): void {
    this.commandWatch.dispose();
  }

  private driveIntx(): void {
    const line = this.ctx?.intx;
    if (!line) return;
    line.setLevel(this.intxLevel && !this.config.intxDisabled);
  }

  private regionAt(index: number, offset: bigint, length: number): BarRegion | undefined {
    const end = offset + BigInt(length);
    return this.regions.find((r) => r.bar === index && offset >= r.offset && end <= r.offset + r.size);
  }
}
