import type { PciBarSpec, PciDevice, PciFunctionContext } from '../../core/pci/device.js';
import type { EventFdFactory, EventLoop } from '../../core/events/event-loop.js';
import type { Interrupts } from '../../core/interrupts/interrupts.js';
import type { Logger } from '../../core/logger.js';
import { RefusalLog } from '../pci/refusals.js';
import { VFIO_DEVICE_FLAGS_PCI, VFIO_DEVICE_FLAGS_RESET, VfioPciRegion } from './abi.js';
import { VfioBars } from './bars.js';
import { VFIO_CONFIG_SIZE, VfioConfigSpace } from './config.js';
import { VfioError } from './errors.js';
import { VfioIrqs } from './irqs.js';
import type { VfioDeviceHandle, VfioRegionInfo } from './kernel.js';
import type { DeviceMemorySlots } from './slots.js';

/** What a VfioPciDevice is made of: the open VFIO device and the VM's services. */
export interface VfioPciDeviceOptions {
  /** The device registry id (also the name in logs). */
  readonly id: string;
  readonly device: VfioDeviceHandle;
  readonly interrupts: Interrupts;
  readonly eventFds: EventFdFactory;
  readonly loop: EventLoop;
  /** Where mmappable BAR parts go; without it every BAR access traps. */
  readonly slots?: DeviceMemorySlots;
  readonly logger?: Logger;
}

/**
 * A host PCI function passed through VFIO, as a PciDevice on the VM's bus: configuration space virtualised
 * (VfioConfigSpace), BARs direct or trapped (VfioBars), interrupts through eventfds and irqfds (VfioIrqs).
 * The function is reset (when VFIO can) when it is built and when it is unplugged.
 */
export class VfioPciDevice implements PciDevice {
  readonly configSize = VFIO_CONFIG_SIZE;
  readonly bars: readonly PciBarSpec[];
  readonly config: VfioConfigSpace;
  readonly refusals: RefusalLog;
  readonly irqs: VfioIrqs;
  private readonly barsIo: VfioBars;
  private readonly canReset: boolean;
  private closed = false;

  constructor(private readonly o: VfioPciDeviceOptions) {
    const { device } = o;
    const info = device.info();
    if ((info.flags & VFIO_DEVICE_FLAGS_PCI) === 0)
      throw new VfioError(
        'Device',
        `${o.id}: the VFIO device is not a PCI device (flags 0x${info.flags.toString(16)})`,
      );
    this.canReset = (info.flags & VFIO_DEVICE_FLAGS_RESET) !== 0;
    this.reset();
    this.refusals = new RefusalLog(o.logger);
    const cfg = device.regionInfo(VfioPciRegion.CONFIG);
    if (cfg.size < BigInt(VFIO_CONFIG_SIZE))
      throw new VfioError('Device', `${o.id}: configuration region of ${cfg.size} bytes is smaller than 256`);
    const regions = new Map<number, VfioRegionInfo>();
    for (let i = VfioPciRegion.BAR0; i <= VfioPciRegion.BAR5 && i < info.numRegions; i++) {
      const r = device.regionInfo(i);
      if (r.size > 0n) regions.set(i, r);
    }
    this.config = new VfioConfigSpace(
      {
        read: (offset, length) => {
          const b = new Uint8Array(length);
          device.read(cfg.offset + BigInt(offset), b);
          return b;
        },
        write: (offset, data) => {
          try {
            device.write(cfg.offset + BigInt(offset), data);
          } catch (err) {
            this.refusals.refuse(`vfio-config:${o.id}`, `${o.id}: configuration write refused`, { err: String(err) });
          }
        },
      },
      [0, 1, 2, 3, 4, 5].map((i) => regions.get(i)?.size ?? 0n),
      this.refusals,
    );
    this.bars = this.config.shadow.bars;
    this.barsIo = new VfioBars(o.id, device, regions, this.bars, this.config.msix, this.refusals, o.slots);
    this.irqs = new VfioIrqs({
      id: o.id,
      device,
      interrupts: o.interrupts,
      eventFds: o.eventFds,
      loop: o.loop,
      msi: this.config.msi,
      msix: this.config.msix,
      refusals: this.refusals,
      logger: o.logger,
    });
  }

  /** The registry id. */
  get id(): string {
    return this.o.id;
  }

  /** The BAR parts that are direct memory (not trapped), per BAR. */
  directParts(bar: number): { offset: bigint; size: bigint; inGuest: boolean }[] {
    return this.barsIo.directParts(bar);
  }

  plugged(ctx: PciFunctionContext): void {
    this.irqs.plugged(ctx.intx, ctx.requesterId);
  }

  readConfig(offset: number, size: 1 | 2 | 4): number {
    return this.config.read(offset, size);
  }

  writeConfig(offset: number, size: 1 | 2 | 4, value: number): void {
    this.config.write(offset, size, value);
  }

  readBar(index: number, offset: bigint, data: Uint8Array): void {
    this.barsIo.read(index, offset, data);
  }

  writeBar(index: number, offset: bigint, data: Uint8Array): void {
    this.barsIo.write(index, offset, data);
  }

  barMapped(index: number, address: bigint | undefined): void {
    this.barsIo.barMapped(index, address);
  }

  unplugged(): void {
    this.close();
  }

  /** Interrupts off, BAR memory out of the guest and unmapped, the function reset; the device fd stays open. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.irqs.dispose();
    this.barsIo.dispose();
    this.reset();
  }

  private reset(): void {
    if (!this.canReset) return;
    try {
      this.o.device.reset();
    } catch (err) {
      this.o.logger?.warn({ err: String(err), device: this.o.id }, 'VFIO device reset failed');
    }
  }
}
