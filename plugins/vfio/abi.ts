/**
 * The VFIO kernel ABI (include/uapi/linux/vfio.h) as this plugin uses it: ioctl numbers, flags and the
 * structures, declared with the kvm plugin's layout engine so `abi.test.ts` can compare every size and
 * offset with the C compiler's view of the installed header.
 */
import { struct } from '../kvm/abi/layout.js';
import { _IO } from '../kvm/abi/ioctls.js';

const VFIO_TYPE = 0x3b; // ';'
const VFIO_BASE = 100;
const io = (n: number): number => _IO(VFIO_TYPE, VFIO_BASE + n);

/** The VFIO ioctls (all `_IO(VFIO_TYPE, VFIO_BASE + n)`: the size is in each structure's argsz). */
export const VFIO = {
  GET_API_VERSION: io(0),
  CHECK_EXTENSION: io(1),
  SET_IOMMU: io(2),
  GROUP_GET_STATUS: io(3),
  GROUP_SET_CONTAINER: io(4),
  GROUP_UNSET_CONTAINER: io(5),
  GROUP_GET_DEVICE_FD: io(6),
  DEVICE_GET_INFO: io(7),
  DEVICE_GET_REGION_INFO: io(8),
  DEVICE_GET_IRQ_INFO: io(9),
  DEVICE_SET_IRQS: io(10),
  DEVICE_RESET: io(11),
  IOMMU_GET_INFO: io(12),
  IOMMU_MAP_DMA: io(13),
  IOMMU_UNMAP_DMA: io(14),
} as const;

/** VFIO_API_VERSION: what VFIO_GET_API_VERSION answers. */
export const VFIO_API_VERSION = 0;
/** IOMMU models for VFIO_CHECK_EXTENSION / VFIO_SET_IOMMU. */
export const VFIO_TYPE1_IOMMU = 1,
  VFIO_TYPE1v2_IOMMU = 3;

/** vfio_group_status.flags. */
export const VFIO_GROUP_FLAGS_VIABLE = 1,
  VFIO_GROUP_FLAGS_CONTAINER_SET = 2;
/** vfio_device_info.flags. */
export const VFIO_DEVICE_FLAGS_RESET = 1,
  VFIO_DEVICE_FLAGS_PCI = 2;
/** vfio_region_info.flags. */
export const VFIO_REGION_INFO_FLAG_READ = 1,
  VFIO_REGION_INFO_FLAG_WRITE = 2,
  VFIO_REGION_INFO_FLAG_MMAP = 4,
  VFIO_REGION_INFO_FLAG_CAPS = 8;
/** Region capability ids: sparse mmap areas, and "the MSI-X table may be mmapped". */
export const VFIO_REGION_INFO_CAP_SPARSE_MMAP = 1,
  VFIO_REGION_INFO_CAP_MSIX_MAPPABLE = 3;
/** vfio_irq_info.flags. */
export const VFIO_IRQ_INFO_EVENTFD = 1,
  VFIO_IRQ_INFO_MASKABLE = 2,
  VFIO_IRQ_INFO_AUTOMASKED = 4,
  VFIO_IRQ_INFO_NORESIZE = 8;
/** vfio_irq_set.flags: the data type (one of) and the action (one of). */
export const VFIO_IRQ_SET_DATA_NONE = 1,
  VFIO_IRQ_SET_DATA_BOOL = 2,
  VFIO_IRQ_SET_DATA_EVENTFD = 4,
  VFIO_IRQ_SET_ACTION_MASK = 8,
  VFIO_IRQ_SET_ACTION_UNMASK = 16,
  VFIO_IRQ_SET_ACTION_TRIGGER = 32;
/** vfio_iommu_type1_dma_map.flags. */
export const VFIO_DMA_MAP_FLAG_READ = 1,
  VFIO_DMA_MAP_FLAG_WRITE = 2;

/** vfio-pci region indexes: BAR 0..5, the expansion ROM, configuration space, VGA. */
export const VfioPciRegion = { BAR0: 0, BAR5: 5, ROM: 6, CONFIG: 7, VGA: 8 } as const;
/** vfio-pci interrupt indexes. */
export const VfioPciIrq = { INTX: 0, MSI: 1, MSIX: 2, ERR: 3, REQ: 4 } as const;

const u16 = 'u16',
  u32 = 'u32',
  u64 = 'u64';

/** VFIO_GROUP_GET_STATUS. */
export const vfio_group_status = struct('vfio_group_status', [
  ['argsz', u32],
  ['flags', u32],
]);
/** VFIO_DEVICE_GET_INFO (6.1 layout, with cap_offset: 20 bytes). */
export const vfio_device_info = struct('vfio_device_info', [
  ['argsz', u32],
  ['flags', u32],
  ['num_regions', u32],
  ['num_irqs', u32],
  ['cap_offset', u32],
]);
/** VFIO_DEVICE_GET_REGION_INFO: followed by a capability chain when flags has CAPS. */
export const vfio_region_info = struct('vfio_region_info', [
  ['argsz', u32],
  ['flags', u32],
  ['index', u32],
  ['cap_offset', u32],
  ['size', u64],
  ['offset', u64],
]);
/** The header of each capability in an info chain; `next` is an offset from the info structure's start. */
export const vfio_info_cap_header = struct('vfio_info_cap_header', [
  ['id', u16],
  ['version', u16],
  ['next', u32],
]);
/** One mmappable area of a region (offset inside the region, size). */
export const vfio_region_sparse_mmap_area = struct('vfio_region_sparse_mmap_area', [
  ['offset', u64],
  ['size', u64],
]);
/** VFIO_REGION_INFO_CAP_SPARSE_MMAP: nr_areas areas follow. */
export const vfio_region_info_cap_sparse_mmap = struct('vfio_region_info_cap_sparse_mmap', [
  ['header', vfio_info_cap_header],
  ['nr_areas', u32],
  ['reserved', u32],
]);
/** VFIO_DEVICE_GET_IRQ_INFO. */
export const vfio_irq_info = struct('vfio_irq_info', [
  ['argsz', u32],
  ['flags', u32],
  ['index', u32],
  ['count', u32],
]);
/** VFIO_DEVICE_SET_IRQS: `count` items of data (bool bytes or 32-bit eventfds) follow. */
export const vfio_irq_set = struct('vfio_irq_set', [
  ['argsz', u32],
  ['flags', u32],
  ['index', u32],
  ['start', u32],
  ['count', u32],
]);
/** VFIO_IOMMU_MAP_DMA. */
export const vfio_iommu_type1_dma_map = struct('vfio_iommu_type1_dma_map', [
  ['argsz', u32],
  ['flags', u32],
  ['vaddr', u64],
  ['iova', u64],
  ['size', u64],
]);
/** VFIO_IOMMU_UNMAP_DMA (without the dirty bitmap). */
export const vfio_iommu_type1_dma_unmap = struct('vfio_iommu_type1_dma_unmap', [
  ['argsz', u32],
  ['flags', u32],
  ['iova', u64],
  ['size', u64],
]);

/** Every structure above, for the layout test. */
export const VFIO_STRUCTS = {
  vfio_group_status,
  vfio_device_info,
  vfio_region_info,
  vfio_info_cap_header,
  vfio_region_sparse_mmap_area,
  vfio_region_info_cap_sparse_mmap,
  vfio_irq_info,
  vfio_irq_set,
  vfio_iommu_type1_dma_map,
  vfio_iommu_type1_dma_unmap,
};
