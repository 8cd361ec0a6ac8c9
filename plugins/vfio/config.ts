import type { PciBarSpec } from '../../core/pci/device.js';
import { PciConfigSpace } from '../pci/config/space.js';
import { BAR_COUNT, PciBarBits, PciCapId, PciReg } from '../pci/config/registers.js';
import { MsiCapability, MsiControl } from '../pci/msi.js';
import { MsixControl, MsixTable } from '../pci/msix.js';
import type { RefusalLog } from '../pci/refusals.js';
import { VfioError } from './errors.js';

/** The size of the configuration space the guest sees (conventional PCI: the bus here has no extended space). */
export const VFIO_CONFIG_SIZE = 256;

/** Reads and writes of the physical function's configuration space (the VFIO config region). */
export interface PhysicalConfig {
  read(offset: number, length: number): Uint8Array;
  write(offset: number, data: Uint8Array): void;
}

/** A BAR's size as the VFIO region says it, for the layout (indexes 0..5; 0n: no BAR). */
export type BarSizes = readonly bigint[];

const le = (b: Uint8Array, at: number, n: number): number => {
  let v = 0;
  for (let i = n - 1; i >= 0; i--) v = v * 256 + (b[at + i] ?? 0);
  return v;
};

/** Rounds a region size up to what a BAR can be: a power of two, at least 16 (memory) or 4 (I/O) bytes. */
function barSize(size: bigint, io: boolean): bigint {
  let s = io ? 4n : 16n;
  while (s < size) s <<= 1n;
  return s;
}

/** The BARs of the physical function: kinds from its BAR registers, sizes from the VFIO regions. */
export function barSpecs(phys: Uint8Array, sizes: BarSizes): PciBarSpec[] {
  const out: PciBarSpec[] = [];
  for (let i = 0; i < BAR_COUNT; i++) {
    const reg = le(phys, PciReg.BAR0 + 4 * i, 4);
    const size = sizes[i] ?? 0n;
    const io = (reg & PciBarBits.IO) !== 0;
    const is64 = !io && (reg & 0x6) === PciBarBits.MEM_TYPE_64;
    if (size > 0n) {
      if (is64 && i === BAR_COUNT - 1) throw new VfioError('Device', `BAR 5 claims to be 64-bit`);
      out.push({
        index: i,
        kind: io ? 'io' : is64 ? 'mmio64' : 'mmio32',
        size: barSize(size, io),
        prefetchable: !io && (reg & PciBarBits.PREFETCHABLE) !== 0,
      });
    }
    if (is64) i++; // the upper half
  }
  return out;
}

/**
 * A passed-through function's configuration space as the guest sees it: the BAR registers (placement and
 * sizing), the expansion ROM (none), the header type (single function), the interrupt line, the command
 * register and the MSI / MSI-X capabilities are emulated in a PciConfigSpace (the shadow); every other
 * byte is read from and written to the physical function through VFIO, which filters what a user may
 * change. Command writes reach both (the bus reads decode from the shadow; the device needs memory
 * decode and bus mastering). Accesses that are not aligned 1/2/4 bytes inside the 256 bytes read all ones
 * and write nothing. Capabilities stay where the physical list has them.
 */
export class VfioConfigSpace {
  readonly shadow: PciConfigSpace;
  readonly msi: MsiCapability | undefined;
  readonly msix: MsixTable | undefined;
  /** 1 where the guest sees the shadow, 0 where it sees the device. */
  private readonly emulated = new Uint8Array(VFIO_CONFIG_SIZE);

  constructor(
    private readonly phys: PhysicalConfig,
    sizes: BarSizes,
    refusals?: RefusalLog,
  ) {
    const h = phys.read(0, VFIO_CONFIG_SIZE);
    const pin = h[PciReg.INTERRUPT_PIN];
    this.shadow = new PciConfigSpace({
      vendorId: le(h, PciReg.VENDOR_ID, 2),
      deviceId: le(h, PciReg.DEVICE_ID, 2),
      classCode: le(h, PciReg.CLASS_CODE, 3),
      revision: h[PciReg.REVISION_ID],
      subsystemVendorId: le(h, PciReg.SUBSYSTEM_VENDOR_ID, 2),
      subsystemId: le(h, PciReg.SUBSYSTEM_ID, 2),
      interruptPin: pin <= 4 ? pin : 0,
      bars: barSpecs(h, sizes),
    });
    this.mark(PciReg.COMMAND, 2);
    this.mark(PciReg.HEADER_TYPE, 1);
    this.mark(PciReg.BAR0, 4 * BAR_COUNT);
    this.mark(PciReg.EXPANSION_ROM, 4);
    this.mark(PciReg.INTERRUPT_LINE, 2);
    let msi: MsiCapability | undefined;
    let msix: MsixTable | undefined;
    for (const cap of capabilityList(h)) {
      if (cap.id === PciCapId.MSI && !msi) {
        const control = le(h, cap.offset + 2, 2);
        const mmc = Math.min((control >> MsiControl.MMC_SHIFT) & 7, 5);
        msi = new MsiCapability(
          this.shadow,
          {
            vectors: 1 << mmc,
            addr64: (control & MsiControl.ADDR64) !== 0,
            perVectorMask: (control & MsiControl.PER_VECTOR_MASK) !== 0,
            capOffset: cap.offset,
          },
          refusals,
        );
        this.mark(cap.offset + 2, msi.cap.length - 2);
      } else if (cap.id === PciCapId.MSIX && !msix) {
        const control = le(h, cap.offset + 2, 2);
        const table = le(h, cap.offset + 4, 4);
        const pba = le(h, cap.offset + 8, 4);
        msix = new MsixTable(
          this.shadow,
          {
            vectors: (control & MsixControl.TABLE_SIZE_MASK) + 1,
            tableBar: table & 7,
            tableOffset: table & ~7,
            pbaBar: pba & 7,
            pbaOffset: pba & ~7,
            capOffset: cap.offset,
          },
          refusals,
        );
        this.mark(cap.offset + 2, 10);
      }
    }
    this.msi = msi;
    this.msix = msix;
  }

  private mark(offset: number, length: number): void {
    this.emulated.fill(1, offset, offset + length);
  }

  /** Whether the byte at `offset` is the shadow's. */
  isEmulated(offset: number): boolean {
    return this.emulated[offset] === 1;
  }

  /** A guest read. */
  read(offset: number, size: number): number {
    if (!valid(offset, size)) return size === 1 || size === 2 ? 2 ** (8 * size) - 1 : 0xffff_ffff;
    let emu = 0;
    for (let i = 0; i < size; i++) emu += this.emulated[offset + i];
    const shadow = emu > 0 ? this.shadow.read(offset, size) : 0;
    if (emu === size) return shadow;
    const dev = this.phys.read(offset, size);
    let v = 0;
    for (let i = size - 1; i >= 0; i--) {
      const byte = this.emulated[offset + i] ? Math.floor(shadow / 2 ** (8 * i)) & 0xff : dev[i];
      v = v * 256 + byte;
    }
    return v;
  }

  /** A guest write: emulated bytes to the shadow (its masks apply), the rest and the command register to the device. */
  write(offset: number, size: number, value: number): void {
    if (!valid(offset, size) || !Number.isFinite(value)) return;
    const bytes = new Uint8Array(size);
    for (let i = 0; i < size; i++) bytes[i] = Math.floor(value / 2 ** (8 * i)) & 0xff;
    let emu = false;
    for (let i = 0; i < size; i++) emu ||= this.emulated[offset + i] === 1;
    if (emu) this.shadow.write(offset, size, value >>> 0);
    // byte runs that go to the device
    let start = -1;
    for (let i = 0; i <= size; i++) {
      const at = offset + i;
      const forward = i < size && (!this.emulated[at] || at === PciReg.COMMAND || at === PciReg.COMMAND + 1);
      if (forward && start < 0) start = i;
      if (!forward && start >= 0) {
        this.phys.write(offset + start, bytes.subarray(start, i));
        start = -1;
      }
    }
  }
}

function valid(offset: number, size: number): boolean {
  return (
    (size === 1 || size === 2 || size === 4) &&
    Number.isInteger(offset) &&
    offset >= 0 &&
    offset + size <= VFIO_CONFIG_SIZE &&
    offset % size === 0
  );
}

/** The capability list of a configuration space snapshot (bounded: a looping list ends after 48 entries). */
export function capabilityList(h: Uint8Array): { id: number; offset: number }[] {
  const out: { id: number; offset: number }[] = [];
  if ((le(h, PciReg.STATUS, 2) & 0x10) === 0) return out;
  let at = h[PciReg.CAPABILITIES_POINTER] & ~3;
  const seen = new Set<number>();
  while (at >= PciReg.HEADER_END && at < VFIO_CONFIG_SIZE && !seen.has(at) && out.length < 48) {
    seen.add(at);
    out.push({ id: h[at], offset: at });
    at = h[at + 1] & ~3;
  }
  return out;
}
