import { GuestRange } from '../../core/address.js';
import type { Bus, Disposable } from '../../core/bus/bus.js';
import type { Interrupts } from '../../core/interrupts/interrupts.js';
import type { Logger } from '../../core/logger.js';
import { pciAddress } from '../../core/pci/address.js';
import type { PciAddOptions, PciAttachment, PciBus, PciBusChange } from '../../core/pci/bus.js';
import type { PciDevice } from '../../core/pci/device.js';
import type { Allocation, Resources } from '../../core/platform/resources.js';
import { BarWindow } from './bar-window.js';
import { barRegisters, decodedBarBase } from './config/bars.js';
import { PciReg } from './config/registers.js';
import {
  CONFIG_ADDRESS_PORT,
  CONFIG_PORTS,
  ECAM_BUS_SIZE,
  EcamConfigAccess,
  PortConfigAccess,
  allOnes,
  type ConfigSpaceAccess,
} from './config-access.js';
import { PciError } from './errors.js';
import { hostBridge } from './host-bridge.js';
import { DEFAULT_INTX_LINES, IntxRouter } from './intx.js';
import { RefusalLog } from './refusals.js';

/** What the root bus works with. */
export interface PciRootBusDeps {
  readonly bus: Bus;
  readonly resources: Resources;
  readonly interrupts: Interrupts;
  readonly logger?: Logger;
  /** Whether the VM's vCPUs have started (reported with each change: a hotplug). */
  readonly running: () => boolean;
}

/** How the root bus is set up. */
export interface PciRootBusOptions {
  /** Serve configuration mechanism #1 on ports 0xCF8..0xCFF (default true). */
  readonly ports?: boolean;
  /** Serve ECAM for bus 0 in a 1 MiB window from the 'mmio32' space (default true). */
  readonly ecam?: boolean;
  /**
   * INTx lines to take first (numbers or layout names; default DEFAULT_INTX_LINES); lines that are taken or
   * unknown are replaced by any free line.
   */
  readonly intxLines?: readonly (number | string)[];
}

/** One plugged function. */
interface Slot {
  readonly attachment: PciAttachment;
  readonly windows: BarWindow[];
  readonly name: string;
  readonly undo: Disposable[];
}

/** Slots 1..31 are for devices; slot 0 holds the host bridge. */
const FIRST_DEVICE_SLOT = 1;
const SLOTS = 32;

/**
 * PCI segment 0, bus 0 (the PciBus service): the host bridge at 00:00.0, configuration access through
 * ports 0xCF8/0xCFC and ECAM, functions plugged into slots 1..31 (single-function devices, function 0).
 * Plugging in places the BARs through Resources (as firmware would: written into the BAR registers,
 * decode left to the guest) and wires the INTx pin to the slot's shared line. After every configuration
 * write the bus reads the command and BAR registers back and moves, maps or unmaps the windows on the
 * VMM's bus (BarWindow), then calls barMapped(). What a guest gets refused (an access outside a
 * function's configuration space, a BAR over RAM or another window) is logged, rate limited; the access
 * reads all ones or is dropped, and everything else keeps working.
 */
export class PciRootBus implements PciBus, ConfigSpaceAccess, Disposable {
  readonly refusals: RefusalLog;
  readonly intx: IntxRouter;
  /** The ECAM window (bus 0 only), when served. */
  readonly ecam: Allocation | undefined;
  private readonly slots = new Map<number, Slot>();
  private readonly listeners = new Set<(c: PciBusChange) => void>();
  private readonly undo: Disposable[] = [];
  private disposed = false;

  constructor(
    private readonly deps: PciRootBusDeps,
    opts: PciRootBusOptions = {},
  ) {
    this.refusals = new RefusalLog(deps.logger);
    try {
      if (opts.ports ?? true) {
        this.undo.push(deps.resources.reserve('pio', BigInt(CONFIG_ADDRESS_PORT), { owner: 'pci-config', size: 8n }));
        this.undo.push(
          deps.bus.register(
            'pio',
            GuestRange.of(CONFIG_ADDRESS_PORT, CONFIG_PORTS),
            new PortConfigAccess(this),
            'pci-config',
          ),
        );
      }
      if (opts.ecam ?? true) {
        this.ecam = deps.resources.allocate('mmio32', { owner: 'pci-ecam', size: ECAM_BUS_SIZE, align: ECAM_BUS_SIZE });
        this.undo.push(this.ecam);
        this.undo.push(deps.bus.register('mmio', this.ecam.range, new EcamConfigAccess(this), 'pci-ecam'));
      }
      this.intx = IntxRouter.take(deps.interrupts, 'pci-intx', opts.intxLines ?? DEFAULT_INTX_LINES);
      this.undo.push(this.intx);
      this.plug(hostBridge(), 0, 'host-bridge');
    } catch (err) {
      this.dispose();
      throw err;
    }
  }

  add(device: PciDevice, opts: PciAddOptions = {}): PciAttachment {
    if (this.disposed) throw new PciError('Slot', `the PCI bus is gone; cannot add ${device.id}`);
    const slot = opts.slot ?? this.freeSlot(device.id);
    if (!Number.isInteger(slot) || slot < FIRST_DEVICE_SLOT || slot >= SLOTS)
      throw new PciError('Slot', `${device.id}: PCI slot ${slot} is not ${FIRST_DEVICE_SLOT}..${SLOTS - 1}`, { slot });
    const taken = this.slots.get(slot);
    if (taken) throw new PciError('Slot', `${device.id}: PCI slot ${slot} is taken by ${taken.name}`, { slot });
    if ([...this.slots.values()].some((s) => s.attachment.device.id === device.id))
      throw new PciError('Slot', `${device.id} is already on the PCI bus`);
    const attachment = this.plug(device, slot, opts.name ?? device.id);
    this.emit({ kind: 'added', attachment, running: this.deps.running() });
    return attachment;
  }

  attachments(): readonly PciAttachment[] {
    return [...this.slots.entries()]
      .filter(([slot]) => slot >= FIRST_DEVICE_SLOT)
      .sort((a, b) => a[0] - b[0])
      .map(([, s]) => s.attachment);
  }

  onChange(listener: (change: PciBusChange) => void): Disposable {
    this.listeners.add(listener);
    return { dispose: () => this.listeners.delete(listener) };
  }

  /** Where BAR `index` of the function in `slot` decodes now (undefined: not mapped). */
  barBase(slot: number, index: number): bigint | undefined {
    return this.slots.get(slot)?.windows.find((w) => w.spec.index === index)?.base;
  }

  configRead(bus: number, device: number, fn: number, offset: number, size: number, via: string): number {
    const s = this.lookup(bus, device, fn);
    if (!s) return allOnes(size);
    const d = s.attachment.device;
    if (!this.checkAccess(s, offset, size, via)) return allOnes(size);
    try {
      return d.readConfig(offset, size as 1 | 2 | 4) >>> 0;
    } catch (err) {
      this.refusals.refuse(`fn:${s.name}`, `${s.name}: configuration read at 0x${offset.toString(16)} failed`, {
        err: String(err),
      });
      return allOnes(size);
    }
  }

  configWrite(bus: number, device: number, fn: number, offset: number, size: number, value: number, via: string): void {
    const s = this.lookup(bus, device, fn);
    if (!s || !this.checkAccess(s, offset, size, via)) return;
    try {
      s.attachment.device.writeConfig(offset, size as 1 | 2 | 4, value);
    } catch (err) {
      this.refusals.refuse(`fn:${s.name}`, `${s.name}: configuration write at 0x${offset.toString(16)} failed`, {
        err: String(err),
      });
    }
    this.remap(s);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const s of [...this.slots.values()].reverse()) s.attachment.dispose();
    for (const u of this.undo.reverse()) u.dispose();
    this.listeners.clear();
  }

  private plug(device: PciDevice, slot: number, name: string): PciAttachment {
    const address = pciAddress(0, 0, slot, 0);
    const undo: Disposable[] = [];
    const windows: BarWindow[] = [];
    const pin = device.readConfig(PciReg.INTERRUPT_PIN, 1);
    const intx = slot === 0 ? undefined : this.intx.connect(name, slot, pin);
    if (intx) undo.push(intx);
    const cleanup = (): void => {
      for (const w of windows) w.dispose();
      for (const u of undo.reverse()) u.dispose();
    };
    try {
      for (const spec of device.bars)
        windows.push(
          new BarWindow(device, spec, `pci:${name}:bar${spec.index}`, {
            bus: this.deps.bus,
            resources: this.deps.resources,
            refusals: this.refusals,
          }),
        );
      const configChanged = (): void => {
        const s = this.slots.get(slot);
        if (s?.attachment.device === device) this.remap(s);
      };
      device.plugged({ address, intx, requesterId: slot << 3, configChanged });
      if (intx) device.writeConfig(PciReg.INTERRUPT_LINE, 1, intx.gsi & 0xff);
      for (const w of windows) {
        const base = w.place();
        const regs = barRegisters(w.spec);
        device.writeConfig(regs[0].offset, 4, Number(base & 0xffff_ffffn));
        if (regs[1]) device.writeConfig(regs[1].offset, 4, Number(base >> 32n));
      }
    } catch (err) {
      cleanup();
      throw err;
    }
    let gone = false;
    const attachment: PciAttachment = {
      address,
      device,
      dispose: () => {
        if (gone) return;
        gone = true;
        this.slots.delete(slot);
        for (const w of windows) if (w.base !== undefined) device.barMapped?.(w.spec.index, undefined);
        cleanup();
        Promise.resolve(device.unplugged?.()).catch((err: unknown) =>
          this.deps.logger?.warn({ err: String(err) }, `${name}: unplug failed`),
        );
        if (slot >= FIRST_DEVICE_SLOT) this.emit({ kind: 'removed', attachment, running: this.deps.running() });
      },
    };
    this.slots.set(slot, { attachment, windows, name, undo });
    this.remap(this.slots.get(slot)!);
    return attachment;
  }

  /** Re-reads the command and BAR registers and moves the windows that changed. */
  private remap(s: Slot): void {
    const d = s.attachment.device;
    const read = (o: number, n: 1 | 2 | 4): number => d.readConfig(o, n);
    for (const w of s.windows) {
      let want: bigint | undefined;
      try {
        want = decodedBarBase(read, w.spec);
      } catch {
        want = undefined;
      }
      if (w.update(want)) d.barMapped?.(w.spec.index, w.base);
    }
  }

  private lookup(bus: number, device: number, fn: number): Slot | undefined {
    if (bus !== 0 || fn !== 0) return undefined;
    return this.slots.get(device);
  }

  private checkAccess(s: Slot, offset: number, size: number, via: string): boolean {
    const d = s.attachment.device;
    if ((size === 1 || size === 2 || size === 4) && offset % size === 0 && offset + size <= d.configSize) return true;
    this.refusals.refuse(
      `cfg:${s.name}`,
      `${s.name}: ${size}-byte configuration access at 0x${offset.toString(16)} (${via}) is outside its ` +
        `${d.configSize}-byte configuration space or unaligned; refused`,
      { offset, size },
    );
    return false;
  }

  private freeSlot(id: string): number {
    for (let s = FIRST_DEVICE_SLOT; s < SLOTS; s++) if (!this.slots.has(s)) return s;
    throw new PciError('Exhausted', `${id}: no free PCI slot (31 devices on bus 0)`);
  }

  private emit(change: PciBusChange): void {
    for (const l of [...this.listeners]) {
      try {
        l(change);
      } catch (err) {
        this.deps.logger?.warn({ err: String(err) }, 'PCI bus change listener failed');
      }
    }
  }
}
