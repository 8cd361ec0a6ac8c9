/**
 * The VFIO kernel interface's test double: a FakeVfioKernel with FakeVfioFunctions (configuration space,
 * BAR memory, interrupts) that records what the plugin asks of VFIO, so unit tests drive the device
 * model without /dev/vfio. Region offsets follow vfio-pci (index << 40).
 */
import { PciCapId, PciReg } from '../pci/config/registers.js';
import {
  VFIO_DEVICE_FLAGS_PCI,
  VFIO_DEVICE_FLAGS_RESET,
  VFIO_IRQ_INFO_EVENTFD,
  VFIO_IRQ_INFO_MASKABLE,
  VFIO_REGION_INFO_FLAG_MMAP,
  VFIO_REGION_INFO_FLAG_READ,
  VFIO_REGION_INFO_FLAG_WRITE,
  VfioPciIrq,
  VfioPciRegion,
} from './abi.js';
import { VfioError } from './errors.js';
import type {
  VfioContainerHandle,
  VfioDeviceHandle,
  VfioDeviceInfo,
  VfioGroupHandle,
  VfioIrqAction,
  VfioIrqData,
  VfioIrqInfo,
  VfioKernel,
  VfioMapping,
  VfioRegionInfo,
} from './kernel.js';

/** A BAR of a fake function. */
export interface FakeBar {
  readonly index: number;
  readonly kind: 'io' | 'mmio32' | 'mmio64';
  readonly size: number;
  readonly prefetchable?: boolean;
  /** VFIO lets it be mmapped (default: memory BARs of at least a page). */
  readonly mmap?: boolean;
}

/** What a fake function looks like (an NVMe-like controller by default). */
export interface FakeFunctionOptions {
  readonly vendorId?: number;
  readonly deviceId?: number;
  readonly classCode?: number;
  readonly bars?: readonly FakeBar[];
  /** MSI-X: vectors, table and PBA places (default 4 vectors, table at BAR 0 +0x2000, PBA +0x3000); false: none. */
  readonly msix?: { vectors: number; tableBar: number; tableOffset: number; pbaBar: number; pbaOffset: number } | false;
  /** MSI: vectors (power of two) and whether it has per-vector masking. */
  readonly msi?: { vectors: number; perVectorMask?: boolean };
  /** Interrupt pin (1 = INTA#); 0 none. */
  readonly pin?: number;
  readonly reset?: boolean;
}

/** One VFIO_DEVICE_SET_IRQS call as the fake saw it. */
export interface FakeIrqCall {
  readonly index: number;
  readonly action: VfioIrqAction;
  readonly start: number;
  readonly count: number;
  readonly data: VfioIrqData;
}

const REGION_SHIFT = 40n;
/** Where region `index` starts in the device fd (vfio-pci's VFIO_PCI_INDEX_TO_OFFSET). */
export const regionOffset = (index: number): bigint => BigInt(index) << REGION_SHIFT;

/** A fake passed-through PCI function: bytes of configuration space and BARs, interrupt eventfds, resets. */
export class FakeVfioFunction implements VfioDeviceHandle {
  readonly fd: number;
  readonly config = new Uint8Array(256);
  readonly bars = new Map<number, Uint8Array>();
  readonly barSpecs: readonly FakeBar[];
  readonly irqCalls: FakeIrqCall[] = [];
  /** Eventfds VFIO holds per interrupt index (trigger action). */
  readonly triggers = new Map<number, number[]>();
  /** Configuration writes that reached the device: offset and bytes. */
  readonly configWrites: { offset: number; data: number[] }[] = [];
  readonly mappings: { offset: bigint; size: bigint; hostAddress: bigint; unmapped: boolean }[] = [];
  resets = 0;
  closed = false;
  /** INTx masked by VFIO (automasked at each trigger until unmask). */
  intxMasked = false;

  constructor(
    readonly name: string,
    private readonly opts: FakeFunctionOptions = {},
    fd = 900,
  ) {
    this.fd = fd;
    const c = this.config;
    const dv = new DataView(c.buffer);
    dv.setUint16(PciReg.VENDOR_ID, opts.vendorId ?? 0x1b36, true);
    dv.setUint16(PciReg.DEVICE_ID, opts.deviceId ?? 0x0010, true);
    const cls = opts.classCode ?? 0x010802;
    c[PciReg.CLASS_CODE] = cls & 0xff;
    dv.setUint16(PciReg.CLASS_CODE + 1, cls >>> 8, true);
    c[PciReg.REVISION_ID] = 2;
    c[PciReg.HEADER_TYPE] = 0x80; // says multi-function: the guest must not see it
    c[PciReg.INTERRUPT_PIN] = opts.pin ?? 1;
    dv.setUint16(PciReg.SUBSYSTEM_VENDOR_ID, 0x1af4, true);
    dv.setUint16(PciReg.SUBSYSTEM_ID, 0x1100, true);
    this.barSpecs = opts.bars ?? [{ index: 0, kind: 'mmio64', size: 0x4000 }];
    for (const b of this.barSpecs) {
      const flags = b.kind === 'io' ? 1 : (b.kind === 'mmio64' ? 4 : 0) | (b.prefetchable ? 8 : 0);
      dv.setUint32(PciReg.BAR0 + 4 * b.index, flags, true);
      this.bars.set(b.index, new Uint8Array(b.size));
    }
    // capabilities: PM at 0x40, MSI at 0x50 (optional), PCIe at 0x70, MSI-X at 0xb0 (optional)
    const caps: [number, number][] = [[PciCapId.POWER_MANAGEMENT, 0x40]];
    if (opts.msi) caps.push([PciCapId.MSI, 0x50]);
    caps.push([PciCapId.PCI_EXPRESS, 0x70]);
    const msix =
      opts.msix === undefined
        ? { vectors: 4, tableBar: 0, tableOffset: 0x2000, pbaBar: 0, pbaOffset: 0x3000 }
        : opts.msix;
    if (msix) caps.push([PciCapId.MSIX, 0xb0]);
    dv.setUint16(PciReg.STATUS, 0x10, true);
    c[PciReg.CAPABILITIES_POINTER] = caps[0][1];
    caps.forEach(([id, at], i) => {
      c[at] = id;
      c[at + 1] = caps[i + 1]?.[1] ?? 0;
    });
    dv.setUint16(0x42, 0x0003, true); // PM capabilities (a passed-through register)
    if (opts.msi) {
      const log2 = Math.log2(opts.msi.vectors);
      dv.setUint16(0x52, (log2 << 1) | 0x80 | (opts.msi.perVectorMask ? 0x100 : 0), true);
    }
    dv.setUint16(0x72, 0x0002, true); // PCIe capabilities register
    if (msix) {
      dv.setUint16(0xb2, msix.vectors - 1, true);
      dv.setUint32(0xb4, msix.tableOffset | msix.tableBar, true);
      dv.setUint32(0xb8, msix.pbaOffset | msix.pbaBar, true);
    }
  }

  info(): VfioDeviceInfo {
    return {
      flags: VFIO_DEVICE_FLAGS_PCI | (this.opts.reset === false ? 0 : VFIO_DEVICE_FLAGS_RESET),
      numRegions: 9,
      numIrqs: 5,
    };
  }

  regionInfo(index: number): VfioRegionInfo {
    const rw = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
    if (index === VfioPciRegion.CONFIG)
      return { index, flags: rw, size: 256n, offset: regionOffset(index), mmapAreas: [] };
    const b = this.barSpecs.find((x) => x.index === index);
    if (!b) return { index, flags: 0, size: 0n, offset: regionOffset(index), mmapAreas: [] };
    const mmap = b.mmap ?? (b.kind !== 'io' && b.size >= 0x1000);
    const size = BigInt(b.size);
    return {
      index,
      flags: rw | (mmap ? VFIO_REGION_INFO_FLAG_MMAP : 0),
      size,
      offset: regionOffset(index),
      mmapAreas: mmap ? [{ offset: 0n, size }] : [],
    };
  }

  irqInfo(index: number): VfioIrqInfo {
    const count =
      index === VfioPciIrq.INTX
        ? (this.opts.pin ?? 1) > 0
          ? 1
          : 0
        : index === VfioPciIrq.MSI
          ? (this.opts.msi?.vectors ?? 0)
          : index === VfioPciIrq.MSIX
            ? this.opts.msix === undefined
              ? 4
              : this.opts.msix
                ? this.opts.msix.vectors
                : 0
            : 0;
    return { index, flags: VFIO_IRQ_INFO_EVENTFD | (index === VfioPciIrq.INTX ? VFIO_IRQ_INFO_MASKABLE : 0), count };
  }

  setIrqs(index: number, action: VfioIrqAction, start: number, count: number, data: VfioIrqData): void {
    this.irqCalls.push({ index, action, start, count, data });
    if (action === 'unmask' && index === VfioPciIrq.INTX) this.intxMasked = false;
    if (action !== 'trigger') return;
    if (count === 0 && data.kind === 'none') {
      this.triggers.delete(index);
      return;
    }
    if (data.kind !== 'eventfd') return;
    const other = [...this.triggers.keys()].find((k) => k !== index);
    if (other !== undefined) throw new VfioError('Kernel', `VFIO_DEVICE_SET_IRQS: EINVAL (index ${other} is active)`);
    if (start + count > this.irqInfo(index).count)
      throw new VfioError('Kernel', 'VFIO_DEVICE_SET_IRQS: EINVAL (count)');
    this.triggers.set(index, [...data.fds]);
  }

  /** The device raises vector `vector` of `index`: the eventfd VFIO holds for it (undefined when none). */
  fire(index: number, vector = 0): number | undefined {
    if (index === VfioPciIrq.INTX) {
      if (this.intxMasked) return undefined;
      this.intxMasked = true;
    }
    return this.triggers.get(index)?.[vector];
  }

  reset(): void {
    this.resets++;
  }

  read(offset: bigint, into: Uint8Array): void {
    const { bytes, at } = this.locate(offset, into.length);
    into.set(bytes.subarray(at, at + into.length));
  }

  write(offset: bigint, data: Uint8Array): void {
    const { bytes, at, index } = this.locate(offset, data.length);
    if (index === VfioPciRegion.CONFIG) {
      this.configWrites.push({ offset: at, data: [...data] });
      // vfio-pci virtualises the header: only the command register and capability bodies reach the "device"
      for (let i = 0; i < data.length; i++) {
        const o = at + i;
        if (o >= PciReg.COMMAND && o < PciReg.COMMAND + 2) bytes[o] = data[i];
        else if (o >= PciReg.HEADER_END && bytes[o - (o % 4)] !== 0 && o % 4 >= 2) bytes[o] = data[i];
      }
      return;
    }
    bytes.set(data, at);
  }

  private locate(offset: bigint, length: number): { bytes: Uint8Array; at: number; index: number } {
    const index = Number(offset >> REGION_SHIFT);
    const at = Number(offset & ((1n << REGION_SHIFT) - 1n));
    const bytes = index === VfioPciRegion.CONFIG ? this.config : this.bars.get(index);
    if (!bytes || at + length > bytes.length)
      throw new VfioError('Kernel', `pread/pwrite at 0x${offset.toString(16)} (+${length}): EINVAL`);
    return { bytes, at, index };
  }

  mmap(offset: bigint, size: bigint): VfioMapping {
    const m = {
      offset,
      size,
      hostAddress: 0x7f00_0000_0000n + offset / 0x1000n + BigInt(this.mappings.length) * 0x100_0000n,
      unmapped: false,
    };
    this.mappings.push(m);
    return { hostAddress: m.hostAddress, size, unmap: () => void (m.unmapped = true) };
  }

  close(): void {
    this.closed = true;
  }
}

/** The fake container: records DMA maps (refusing overlaps, as type-1 does) and the IOMMU type. */
export class FakeVfioContainer implements VfioContainerHandle {
  readonly fd = 800;
  iommu: number | undefined;
  readonly dma = new Map<bigint, { vaddr: bigint; size: bigint; flags: number }>();
  closed = false;
  apiVersion(): number {
    return 0;
  }
  checkExtension(ext: number): boolean {
    return ext === 1 || ext === 3;
  }
  setIommu(type: number): void {
    this.iommu = type;
  }
  mapDma(vaddr: bigint, iova: bigint, size: bigint, flags: number): void {
    for (const [start, m] of this.dma)
      if (iova < start + m.size && start < iova + size) throw new VfioError('Kernel', 'VFIO_IOMMU_MAP_DMA: EEXIST');
    this.dma.set(iova, { vaddr, size, flags });
  }
  unmapDma(iova: bigint, size: bigint): void {
    const m = this.dma.get(iova);
    if (!m || m.size !== size) throw new VfioError('Kernel', 'VFIO_IOMMU_UNMAP_DMA: EINVAL');
    this.dma.delete(iova);
  }
  close(): void {
    this.closed = true;
  }
}

/** A fake kernel holding functions by sysfs path, each in its own IOMMU group. */
export class FakeVfioKernel implements VfioKernel {
  readonly containers: FakeVfioContainer[] = [];
  readonly groups = new Map<
    number,
    { fn: FakeVfioFunction; viable: boolean; container?: VfioContainerHandle; open: boolean }
  >();
  private readonly paths = new Map<string, number>();

  /** Adds a function at `address` (0000:00:03.0) in IOMMU group `group`. */
  add(address: string, group: number, fn: FakeVfioFunction, viable = true): void {
    this.paths.set(`/sys/bus/pci/devices/${address}`, group);
    this.groups.set(group, { fn, viable, open: false });
  }

  openContainer(): VfioContainerHandle {
    const c = new FakeVfioContainer();
    this.containers.push(c);
    return c;
  }

  openGroup(group: number): VfioGroupHandle {
    const g = this.groups.get(group);
    if (!g) throw new VfioError('Kernel', `open /dev/vfio/${group} failed: ENOENT (2)`);
    if (g.open) throw new VfioError('Kernel', `open /dev/vfio/${group} failed: EBUSY (16)`);
    g.open = true;
    return {
      fd: 700 + group,
      group,
      status: () => ({ viable: g.viable, containerSet: g.container !== undefined }),
      setContainer: (c) => void (g.container = c),
      unsetContainer: () => void (g.container = undefined),
      device: (name) => {
        if (name !== g.fn.name) throw new VfioError('Kernel', `VFIO_GROUP_GET_DEVICE_FD ${name} failed: EINVAL (22)`);
        if (!g.container)
          throw new VfioError('Kernel', `VFIO_GROUP_GET_DEVICE_FD ${name} failed: EINVAL (no container)`);
        return g.fn;
      },
      close: () => void (g.open = false),
    };
  }

  iommuGroupOf(sysfsPath: string): number {
    const g = this.paths.get(sysfsPath);
    if (g === undefined) throw new VfioError('Config', `${sysfsPath} has no iommu_group`);
    return g;
  }
}
