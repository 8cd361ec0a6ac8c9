import type { Disposable } from '../../../core/bus/bus.js';
import type { PciBarSpec } from '../../../core/pci/device.js';
import { PciError } from '../errors.js';
import { barBase, barRegisters, checkBarSpecs } from './bars.js';
import { COMMAND_WRITABLE, HEADER_TYPE_MULTIFUNCTION, PciCommand, PciReg, PciStatus, STATUS_W1C } from './registers.js';

/** The identity registers of a type 0 header. */
export interface PciHeader {
  readonly vendorId: number;
  readonly deviceId: number;
  /** 24 bits: base class << 16 | sub-class << 8 | programming interface (0x020000 = Ethernet). */
  readonly classCode: number;
  readonly revision?: number;
  readonly subsystemVendorId?: number;
  readonly subsystemId?: number;
  /** Interrupt Pin: 0 none, 1..4 = INTA#..INTD# (default 0). */
  readonly interruptPin?: number;
  /** Header type bit 7: the device has functions besides function 0. */
  readonly multiFunction?: boolean;
}

/** What a configuration space is built from: the header, its size and the BARs. */
export interface PciConfigSpaceOptions extends PciHeader {
  /** 256 (conventional, default) or 4096 (PCI Express extended, reachable through ECAM only). */
  readonly configSize?: 256 | 4096;
  readonly bars?: readonly PciBarSpec[];
}

/** How a register reacts to the guest, besides the stored value: writable and write-1-to-clear bits. */
export interface RegisterMasks {
  /** Bits a guest write replaces (default none: read only). */
  readonly writable?: number;
  /** Bits a guest clears by writing 1 (RW1C). */
  readonly w1c?: number;
}

/** Calls around guest accesses to part of the configuration space (a capability's semantics). */
export interface ConfigWatch {
  /** Before a guest read overlapping the range: refresh dynamic bits (a pending register). */
  onRead?(offset: number, size: number): void;
  /** After a guest write overlapping the range was stored (masks applied). */
  onWrite?(offset: number, size: number): void;
}

const SIZES = new Set([1, 2, 4]);

/**
 * A function's configuration space as data: every byte with its writable and RW1C bits, so a device
 * declares registers and masks instead of writing access code. Guest writes (write()) keep read-only
 * bits and clear RW1C bits written as 1; BAR registers answer the sizing probe as hardware does; the
 * capability list links capabilities from 0x40 and sets the status register's capability bit.
 * The device side uses get()/set(), which ignore masks. Guest accesses that are not naturally aligned
 * 1, 2 or 4 bytes inside the space read all ones and write nothing.
 */
export class PciConfigSpace {
  readonly size: 256 | 4096;
  readonly bars: readonly PciBarSpec[];
  private readonly bytes: Uint8Array;
  private readonly wmask: Uint8Array;
  private readonly w1cmask: Uint8Array;
  private readonly defined: Uint8Array;
  private readonly watches = new Set<{ start: number; end: number; watch: ConfigWatch }>();
  /** Where the last capability's next pointer is (the capabilities pointer while the list is empty). */
  private capTail: number = PciReg.CAPABILITIES_POINTER;
  private capFree: number = PciReg.HEADER_END;

  constructor(opts: PciConfigSpaceOptions) {
    this.size = opts.configSize ?? 256;
    if (this.size !== 256 && this.size !== 4096)
      throw new PciError('InvalidValue', `configuration space size ${String(opts.configSize)} is not 256 or 4096`);
    this.bytes = new Uint8Array(this.size);
    this.wmask = new Uint8Array(this.size);
    this.w1cmask = new Uint8Array(this.size);
    this.defined = new Uint8Array(this.size);
    this.bars = [...(opts.bars ?? [])].sort((a, b) => a.index - b.index);
    checkBarSpecs(this.bars);
    this.header(opts);
    for (const bar of this.bars)
      for (const r of barRegisters(bar)) this.define(r.offset, 4, r.value, { writable: r.writable });
  }

  private header(h: PciHeader): void {
    const field = (name: string, v: number | undefined, bits: number): number => {
      const value = v ?? 0;
      if (!Number.isInteger(value) || value < 0 || value >= 2 ** bits)
        throw new PciError('InvalidValue', `PCI header ${name} ${String(v)} does not fit ${bits} bits`, { name });
      return value;
    };
    this.define(PciReg.VENDOR_ID, 2, field('vendor id', h.vendorId, 16));
    this.define(PciReg.DEVICE_ID, 2, field('device id', h.deviceId, 16));
    this.define(PciReg.COMMAND, 2, 0, { writable: COMMAND_WRITABLE });
    this.define(PciReg.STATUS, 2, 0, { w1c: STATUS_W1C });
    this.define(PciReg.REVISION_ID, 1, field('revision', h.revision, 8));
    const classCode = field('class code', h.classCode, 24);
    this.define(PciReg.CLASS_CODE, 1, classCode & 0xff);
    this.define(PciReg.CLASS_CODE + 1, 2, classCode >>> 8);
    this.define(PciReg.CACHE_LINE_SIZE, 1, 0, { writable: 0xff });
    this.define(PciReg.LATENCY_TIMER, 1, 0);
    this.define(PciReg.HEADER_TYPE, 1, h.multiFunction ? HEADER_TYPE_MULTIFUNCTION : 0);
    this.define(PciReg.BIST, 1, 0);
    this.define(PciReg.SUBSYSTEM_VENDOR_ID, 2, field('subsystem vendor id', h.subsystemVendorId, 16));
    this.define(PciReg.SUBSYSTEM_ID, 2, field('subsystem id', h.subsystemId, 16));
    this.define(PciReg.INTERRUPT_LINE, 1, 0xff, { writable: 0xff }); // 0xff: "unknown / not connected"
    const pin = field('interrupt pin', h.interruptPin, 8);
    if (pin > 4) throw new PciError('InvalidValue', `PCI interrupt pin ${pin} is not 0..4`, { pin });
    this.define(PciReg.INTERRUPT_PIN, 1, pin);
  }

  /** The Interrupt Pin register: 0 none, 1..4 INTA#..INTD#. */
  get interruptPin(): number {
    return this.bytes[PciReg.INTERRUPT_PIN];
  }

  /** The command register now. */
  get command(): number {
    return this.get(PciReg.COMMAND, 2);
  }

  /** Command: memory space decode on. */
  get memoryEnabled(): boolean {
    return (this.command & PciCommand.MEMORY_SPACE) !== 0;
  }

  /** Command: I/O space decode on. */
  get ioEnabled(): boolean {
    return (this.command & PciCommand.IO_SPACE) !== 0;
  }

  /** Command: the function may master the bus (DMA, MSI writes). */
  get busMaster(): boolean {
    return (this.command & PciCommand.BUS_MASTER) !== 0;
  }

  /** Command: INTx disabled by the guest. */
  get intxDisabled(): boolean {
    return (this.command & PciCommand.INTX_DISABLE) !== 0;
  }

  /** The base address held by BAR `index` (a declared BAR; decode state not considered). */
  barAddress(index: number): bigint {
    const spec = this.bars.find((b) => b.index === index);
    if (!spec) throw new PciError('InvalidBar', `no BAR ${index} is declared`, { index });
    return barBase((o, s) => this.get(o, s), spec);
  }

  /** Sets or clears the status register's Interrupt Status bit (the function's INTx state). */
  setInterruptStatus(asserted: boolean): void {
    const status = this.get(PciReg.STATUS, 2);
    this.set(PciReg.STATUS, 2, asserted ? status | PciStatus.INTERRUPT : status & ~PciStatus.INTERRUPT);
  }

  /**
   * Declares a register: its value and masks (default read only). Registers may not overlap an
   * earlier declaration; undeclared bytes read 0 and ignore writes.
   */
  define(offset: number, size: number, value: number, masks: RegisterMasks = {}): void {
    if (!Number.isInteger(offset) || !Number.isInteger(size) || size < 1 || size > 4 || offset < 0)
      throw new PciError('InvalidRegister', `register at ${offset} of ${size} bytes is not 1..4 bytes`, { offset });
    if (offset + size > this.size)
      throw new PciError(
        'InvalidRegister',
        `register at 0x${offset.toString(16)} ends past the ${this.size}-byte space`,
        {
          offset,
        },
      );
    for (let i = 0; i < size; i++)
      if (this.defined[offset + i])
        throw new PciError('InvalidRegister', `register at 0x${offset.toString(16)} overlaps an earlier one`, {
          offset,
        });
    this.defined.fill(1, offset, offset + size);
    this.set(offset, size, value);
    this.store(this.wmask, offset, size, masks.writable ?? 0);
    this.store(this.w1cmask, offset, size, masks.w1c ?? 0);
  }

  /** The value at `offset` (device side: no watches run). */
  get(offset: number, size: 1 | 2 | 4): number {
    return this.load(this.bytes, offset, size);
  }

  /** Stores a value whatever the masks say (device side: a status bit, a pending bit). */
  set(offset: number, size: number, value: number): void {
    this.store(this.bytes, offset, size, value);
  }

  /** Runs `watch` around guest accesses that overlap [offset, offset + length); dispose() stops it. */
  watch(offset: number, length: number, watch: ConfigWatch): Disposable {
    const entry = { start: offset, end: offset + length, watch };
    this.watches.add(entry);
    return { dispose: () => this.watches.delete(entry) };
  }

  /** A guest read: all ones for an access that is not aligned 1, 2 or 4 bytes inside the space. */
  read(offset: number, size: number): number {
    if (!this.valid(offset, size)) return size === 1 || size === 2 ? 2 ** (8 * size) - 1 : 0xffff_ffff;
    for (const w of this.overlapping(offset, size)) w.watch.onRead?.(offset, size);
    return this.load(this.bytes, offset, size as 1 | 2 | 4);
  }

  /** A guest write: writable bits replaced, RW1C bits cleared where `value` has ones, the rest kept. */
  write(offset: number, size: number, value: number): void {
    if (!this.valid(offset, size) || !Number.isFinite(value)) return;
    for (let i = 0; i < size; i++) {
      const at = offset + i;
      const v = Math.floor(value / 2 ** (8 * i)) & 0xff;
      const kept = this.bytes[at] & ~this.wmask[at] & ~(this.w1cmask[at] & v);
      this.bytes[at] = (kept | (v & this.wmask[at])) & 0xff;
    }
    for (const w of this.overlapping(offset, size)) w.watch.onWrite?.(offset, size);
  }

  /**
   * Adds a capability of `length` bytes (header included) with id `id`, linked at the end of the list;
   * its body is declared through the returned PciCapability (relative offsets). Throws 'Exhausted'
   * when the standard configuration space (up to 0x100) has no room. With `at`, the capability is placed
   * at that offset and left out of the list (see placeCapability).
   */
  addCapability(id: number, length: number, at?: number): PciCapability {
    if (!Number.isInteger(id) || id < 0 || id > 0xff)
      throw new PciError('InvalidValue', `capability id ${id} is not a byte`, { id });
    if (!Number.isInteger(length) || length < 2 || length > 0xc0)
      throw new PciError('InvalidValue', `capability length ${length} is not 2..192`, { length });
    if (at !== undefined) return this.placeCapability(id, length, at);
    const offset = this.capFree;
    if (offset + length > 0x100)
      throw new PciError(
        'Exhausted',
        `no room for a ${length}-byte capability 0x${id.toString(16)} at 0x${offset.toString(16)}`,
        {
          id,
        },
      );
    this.define(offset, 1, id);
    this.define(offset + 1, 1, 0);
    this.set(this.capTail, 1, offset);
    if (this.capTail === PciReg.CAPABILITIES_POINTER) {
      this.define(PciReg.CAPABILITIES_POINTER, 1, offset);
      this.set(PciReg.STATUS, 2, this.get(PciReg.STATUS, 2) | PciStatus.CAPABILITIES_LIST);
    }
    this.capTail = offset + 1;
    this.capFree = (offset + length + 3) & ~3;
    return new PciCapability(this, id, offset, length);
  }

  /**
   * A capability at a fixed offset that is not linked into this space's list: its id and next bytes are
   * declared (next 0), the list is the caller's (a passed-through device keeps its own list, vfio).
   */
  private placeCapability(id: number, length: number, at: number): PciCapability {
    if (!Number.isInteger(at) || at < PciReg.HEADER_END || at % 4 !== 0 || at + length > 0x100)
      throw new PciError('InvalidValue', `capability 0x${id.toString(16)} at ${at} is not a dword in 0x40..0xff`, {
        id,
      });
    this.define(at, 1, id);
    this.define(at + 1, 1, 0);
    return new PciCapability(this, id, at, length);
  }

  /** The capabilities in list order (walking the pointers as a driver does). */
  capabilities(): { id: number; offset: number }[] {
    const out: { id: number; offset: number }[] = [];
    let at =
      (this.get(PciReg.STATUS, 2) & PciStatus.CAPABILITIES_LIST) !== 0 ? this.bytes[PciReg.CAPABILITIES_POINTER] : 0;
    while (at >= PciReg.HEADER_END && out.length < 48) {
      out.push({ id: this.bytes[at], offset: at });
      at = this.bytes[at + 1];
    }
    return out;
  }

  private valid(offset: number, size: number): boolean {
    return (
      SIZES.has(size) && Number.isInteger(offset) && offset >= 0 && offset + size <= this.size && offset % size === 0
    );
  }

  private *overlapping(offset: number, size: number): Iterable<{ watch: ConfigWatch }> {
    for (const w of [...this.watches]) if (offset < w.end && w.start < offset + size) yield w;
  }

  private load(arr: Uint8Array, offset: number, size: 1 | 2 | 4): number {
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = v * 256 + (arr[offset + i] ?? 0);
    return v;
  }

  private store(arr: Uint8Array, offset: number, size: number, value: number): void {
    for (let i = 0; i < size; i++) arr[offset + i] = Math.floor(value / 2 ** (8 * i)) & 0xff;
  }
}

/** One capability in a configuration space: its registers are declared at offsets relative to its header. */
export class PciCapability {
  constructor(
    readonly space: PciConfigSpace,
    readonly id: number,
    /** Offset of the capability header (id, next) in configuration space. */
    readonly offset: number,
    /** Bytes, header included. */
    readonly length: number,
  ) {}

  /** Declares a register at `rel` bytes from the header (2 and above: the header is taken). */
  define(rel: number, size: number, value: number, masks: RegisterMasks = {}): void {
    if (rel < 2 || rel + size > this.length)
      throw new PciError('InvalidRegister', `capability 0x${this.id.toString(16)}: register at +${rel} is outside it`, {
        rel,
      });
    this.space.define(this.offset + rel, size, value, masks);
  }

  /** The value at `rel` (device side). */
  get(rel: number, size: 1 | 2 | 4): number {
    return this.space.get(this.offset + rel, size);
  }

  /** Stores at `rel` ignoring masks (device side). */
  set(rel: number, size: number, value: number): void {
    this.space.set(this.offset + rel, size, value);
  }

  /** Runs `watch` around guest accesses to this capability (offsets passed are configuration-space offsets). */
  watch(watch: ConfigWatch): Disposable {
    return this.space.watch(this.offset, this.length, watch);
  }
}
