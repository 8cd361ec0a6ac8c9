/**
 * The VFIO kernel interface as a small typed layer (container, group, device): what the vfio plugin
 * needs from /dev/vfio, so the device model can run over the real kernel (native.ts) or a test double
 * (testing.ts). Every call throws a one-line error naming the call and errno on failure.
 */

/** Where a device region lies in the device fd, what it allows and which parts can be mmapped. */
export interface VfioRegionInfo {
  readonly index: number;
  /** VFIO_REGION_INFO_FLAG_* bits. */
  readonly flags: number;
  readonly size: bigint;
  /** Offset of the region in the device fd (pread/pwrite/mmap). */
  readonly offset: bigint;
  /**
   * Parts that may be mmapped, relative to the region (the whole region when it has the MMAP flag and no
   * sparse-mmap capability; none without the flag).
   */
  readonly mmapAreas: readonly { offset: bigint; size: bigint }[];
}

/** One interrupt index of a device: VFIO_IRQ_INFO_* flags and how many vectors it has. */
export interface VfioIrqInfo {
  readonly index: number;
  readonly flags: number;
  readonly count: number;
}

/** VFIO_DEVICE_GET_INFO. */
export interface VfioDeviceInfo {
  readonly flags: number;
  readonly numRegions: number;
  readonly numIrqs: number;
}

/** What VFIO_DEVICE_SET_IRQS carries: nothing, one bool per vector, or one eventfd (-1: none) per vector. */
export type VfioIrqData =
  | { readonly kind: 'none' }
  | { readonly kind: 'bool'; readonly values: readonly boolean[] }
  | { readonly kind: 'eventfd'; readonly fds: readonly number[] };

/** VFIO_DEVICE_SET_IRQS's action. */
export type VfioIrqAction = 'mask' | 'unmask' | 'trigger';

/** A host mapping of part of a device region (mmap of the device fd). */
export interface VfioMapping {
  /** Host virtual address of the first byte (for a KVM memory slot). */
  readonly hostAddress: bigint;
  readonly size: bigint;
  unmap(): void;
}

/** An open VFIO device (from VFIO_GROUP_GET_DEVICE_FD). */
export interface VfioDeviceHandle {
  readonly fd: number;
  info(): VfioDeviceInfo;
  regionInfo(index: number): VfioRegionInfo;
  irqInfo(index: number): VfioIrqInfo;
  /** VFIO_DEVICE_SET_IRQS for vectors [start, start + count) of `index`. */
  setIrqs(index: number, action: VfioIrqAction, start: number, count: number, data: VfioIrqData): void;
  reset(): void;
  /** pread of the device fd at `offset` (a region's offset plus an offset inside it). */
  read(offset: bigint, into: Uint8Array): void;
  /** pwrite of the device fd. */
  write(offset: bigint, data: Uint8Array): void;
  /** mmap (shared, read/write) of `size` bytes of the device fd at `offset`. */
  mmap(offset: bigint, size: bigint): VfioMapping;
  close(): void;
}

/** An open VFIO group (/dev/vfio/<n>). */
export interface VfioGroupHandle {
  readonly fd: number;
  readonly group: number;
  /** VFIO_GROUP_GET_STATUS: viable (every device of the group bound to a VFIO driver), container set. */
  status(): { viable: boolean; containerSet: boolean };
  setContainer(container: VfioContainerHandle): void;
  unsetContainer(): void;
  /** VFIO_GROUP_GET_DEVICE_FD for the device named `name` (its PCI address, 0000:00:03.0). */
  device(name: string): VfioDeviceHandle;
  close(): void;
}

/** An open VFIO container (/dev/vfio/vfio): the IOMMU context the devices' DMA goes through. */
export interface VfioContainerHandle {
  readonly fd: number;
  apiVersion(): number;
  checkExtension(ext: number): boolean;
  setIommu(type: number): void;
  /** VFIO_IOMMU_MAP_DMA: `size` bytes of this process at `vaddr` become device-visible at `iova`. */
  mapDma(vaddr: bigint, iova: bigint, size: bigint, flags: number): void;
  unmapDma(iova: bigint, size: bigint): void;
  close(): void;
}

/** The entry points: open the container and groups, find a device's IOMMU group in sysfs. */
export interface VfioKernel {
  openContainer(): VfioContainerHandle;
  openGroup(group: number): VfioGroupHandle;
  /** The IOMMU group number of the PCI device at `sysfsPath` (/sys/bus/pci/devices/0000:00:03.0). */
  iommuGroupOf(sysfsPath: string): number;
}
