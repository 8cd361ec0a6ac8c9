import type { Disposable } from '../../core/bus/bus.js';
import type { Interrupts } from '../../core/interrupts/interrupts.js';
import { pciAddress, type PciAddress } from '../../core/pci/address.js';
import type { PciAddOptions, PciAttachment, PciBus, PciBusChange } from '../../core/pci/bus.js';
import type { PciBarSpec, PciDevice } from '../../core/pci/device.js';
import { PciReg } from './config/registers.js';
import { barRegisters, decodedBarBase } from './config/bars.js';
import { PciError } from './errors.js';

/** One function on the TestPciBus: its attachment and where its BARs decode now. */
interface TestSlot {
  readonly attachment: PciAttachment;
  readonly mapped: Map<number, bigint>;
}

/** Firmware-like bases the test bus places BARs from (I/O, 32-bit and 64-bit memory). */
const START = { io: 0xc000n, mmio32: 0xe000_0000n, mmio64: 0x80_0000_0000n } as const;

/**
 * A PciBus test double for device plugins' unit tests: add() records the function, plugs it in (an
 * INTx level line from `interrupts` when its pin is set and an Interrupts double is given), places its
 * BARs as firmware would (writes their registers from fixed bases, decode left off, as Linux finds
 * them), and lets the test act as the guest: configuration reads and writes (after each write the
 * command and BAR registers are read back and barMapped() called for windows that moved), BAR
 * accesses by index or by guest address. Accesses are checked as the real bus checks them (naturally
 * aligned 1/2/4 bytes inside configSize; BAR accesses inside the BAR), throwing instead of ignoring.
 */
export class TestPciBus implements PciBus {
  /** Every add() in order, removed ones included. */
  readonly added: PciAttachment[] = [];
  /** Every change reported to listeners, in order. */
  readonly changes: PciBusChange[] = [];
  /** What `running` the next change reports (a test sets it to act as a hotplug at runtime). */
  running = false;
  private readonly slots = new Map<number, TestSlot>();
  private readonly listeners = new Set<(c: PciBusChange) => void>();
  private readonly next: Record<PciBarSpec['kind'], bigint> = { ...START };

  constructor(private readonly opts: { interrupts?: Interrupts } = {}) {}

  add(device: PciDevice, opts: PciAddOptions = {}): PciAttachment {
    const slot = opts.slot ?? this.freeSlot();
    if (!Number.isInteger(slot) || slot < 1 || slot > 31) throw new PciError('Slot', `slot ${slot} is not 1..31`);
    if (this.slots.has(slot)) throw new PciError('Slot', `slot ${slot} is taken`, { slot });
    const address: PciAddress = pciAddress(0, 0, slot, 0);
    const pin = device.readConfig(PciReg.INTERRUPT_PIN, 1);
    const intx =
      pin !== 0 && this.opts.interrupts
        ? this.opts.interrupts.legacy({ owner: opts.name ?? device.id, mode: 'level', irqfd: true })
        : undefined;
    const mapped = new Map<number, bigint>();
    const attachment: PciAttachment = {
      address,
      device,
      dispose: () => {
        if (this.slots.get(slot)?.attachment !== attachment) return;
        this.slots.delete(slot);
        for (const i of mapped.keys()) device.barMapped?.(i, undefined);
        void device.unplugged?.();
        intx?.dispose();
        this.emit({ kind: 'removed', attachment, running: this.running });
      },
    };
    device.plugged({ address, intx, requesterId: (slot << 3) & 0xffff });
    if (intx) device.writeConfig(PciReg.INTERRUPT_LINE, 1, intx.gsi & 0xff);
    for (const bar of device.bars) this.place(device, bar);
    this.slots.set(slot, { attachment, mapped });
    this.added.push(attachment);
    this.emit({ kind: 'added', attachment, running: this.running });
    return attachment;
  }

  attachments(): readonly PciAttachment[] {
    return [...this.slots.entries()].sort((a, b) => a[0] - b[0]).map(([, s]) => s.attachment);
  }

  onChange(listener: (change: PciBusChange) => void): Disposable {
    this.listeners.add(listener);
    return { dispose: () => this.listeners.delete(listener) };
  }

  /** The guest reads configuration space of `device`. */
  readConfig(device: PciDevice, offset: number, size: 1 | 2 | 4): number {
    this.slotOf(device);
    checkConfigAccess(device, offset, size);
    return device.readConfig(offset, size);
  }

  /** The guest writes configuration space; BAR windows follow the command and BAR registers. */
  writeConfig(device: PciDevice, offset: number, size: 1 | 2 | 4, value: number): void {
    const s = this.slotOf(device);
    checkConfigAccess(device, offset, size);
    device.writeConfig(offset, size, value);
    for (const bar of device.bars) {
      const base = decodedBarBase((o, n) => device.readConfig(o, n), bar);
      if (base === s.mapped.get(bar.index)) continue;
      if (base === undefined) s.mapped.delete(bar.index);
      else s.mapped.set(bar.index, base);
      device.barMapped?.(bar.index, base);
    }
  }

  /** Where BAR `index` of `device` decodes now (undefined: it does not). */
  mapped(device: PciDevice, index: number): bigint | undefined {
    return this.slotOf(device).mapped.get(index);
  }

  /** Turns memory and I/O decode on, as a driver does in pci_enable_device(). */
  enable(device: PciDevice, busMaster = true): void {
    const command = this.readConfig(device, PciReg.COMMAND, 2);
    this.writeConfig(device, PciReg.COMMAND, 2, command | 0x3 | (busMaster ? 0x4 : 0));
  }

  /** A guest read of `size` bytes inside BAR `index` (little endian value), whether or not it decodes. */
  readBar(device: PciDevice, index: number, offset: bigint, size: number): bigint {
    const data = new Uint8Array(size);
    device.readBar(index, this.checkBar(device, index, offset, size), data);
    return data.reduceRight((v, b) => (v << 8n) | BigInt(b), 0n);
  }

  /** A guest write of `size` bytes of `value` inside BAR `index`. */
  writeBar(device: PciDevice, index: number, offset: bigint, size: number, value: bigint | number): void {
    const data = new Uint8Array(size);
    let v = BigInt(value);
    for (let i = 0; i < size; i++, v >>= 8n) data[i] = Number(v & 0xffn);
    device.writeBar(index, this.checkBar(device, index, offset, size), data);
  }

  /**
   * A guest access by address, as the VMM's bus would route it: the function whose decoding BAR
   * holds [address, address + size) in that space, or undefined when none does.
   */
  access(
    space: 'pio' | 'mmio',
    address: bigint,
    size: number,
  ): { device: PciDevice; index: number; offset: bigint } | undefined {
    for (const s of this.slots.values())
      for (const [index, base] of s.mapped) {
        const bar = s.attachment.device.bars.find((b) => b.index === index)!;
        if ((bar.kind === 'io') !== (space === 'pio')) continue;
        if (address >= base && address + BigInt(size) <= base + bar.size)
          return { device: s.attachment.device, index, offset: address - base };
      }
    return undefined;
  }

  private place(device: PciDevice, bar: PciBarSpec): void {
    const align = bar.kind === 'io' ? bar.size : bar.size > 0x1000n ? bar.size : 0x1000n;
    const base = (this.next[bar.kind] + align - 1n) & ~(align - 1n);
    this.next[bar.kind] = base + align;
    const regs = barRegisters(bar);
    device.writeConfig(regs[0].offset, 4, Number(base & 0xffff_ffffn));
    if (regs[1]) device.writeConfig(regs[1].offset, 4, Number(base >> 32n));
  }

  private freeSlot(): number {
    for (let s = 1; s < 32; s++) if (!this.slots.has(s)) return s;
    throw new PciError('Exhausted', 'no free PCI slot');
  }

  private slotOf(device: PciDevice): TestSlot {
    for (const s of this.slots.values()) if (s.attachment.device === device) return s;
    throw new PciError('Slot', `${device.id} is not plugged into the test bus`);
  }

  private checkBar(device: PciDevice, index: number, offset: bigint, size: number): bigint {
    this.slotOf(device);
    const bar = device.bars.find((b) => b.index === index);
    if (!bar) throw new PciError('InvalidBar', `${device.id} has no BAR ${index}`);
    if (offset < 0n || offset + BigInt(size) > bar.size || ![1, 2, 4, 8].includes(size))
      throw new PciError('InvalidBar', `${size}-byte access at ${offset} is outside BAR ${index}`);
    return offset;
  }

  private emit(change: PciBusChange): void {
    this.changes.push(change);
    for (const l of [...this.listeners]) l(change);
  }
}

/** Throws for a configuration access the real bus would never pass to a function. */
function checkConfigAccess(device: PciDevice, offset: number, size: number): void {
  if (![1, 2, 4].includes(size) || !Number.isInteger(offset) || offset < 0 || offset % size !== 0)
    throw new PciError('InvalidRegister', `configuration access of ${size} bytes at ${offset} is not aligned`);
  if (offset + size > device.configSize)
    throw new PciError('InvalidRegister', `configuration access at ${offset} is past ${device.configSize} bytes`);
}
