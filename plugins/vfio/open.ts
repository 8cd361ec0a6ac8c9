import { basename } from 'node:path';
import type { Disposable } from '../../core/bus/bus.js';
import type { GuestMemory } from '../../core/memory/guest-memory.js';
import {
  VFIO_API_VERSION,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_TYPE1_IOMMU,
  VFIO_TYPE1v2_IOMMU,
} from './abi.js';
import { VfioError } from './errors.js';
import type { VfioContainerHandle, VfioDeviceHandle, VfioGroupHandle, VfioKernel } from './kernel.js';

const ADDRESS = /^(?:([0-9a-f]{4}):)?([0-9a-f]{2}):([0-1][0-9a-f])\.([0-7])$/i;

/**
 * The sysfs path of the device a config names: a PCI address (`0000:00:03.0`, or `00:03.0` in segment 0)
 * or a path under /sys (taken as is). Anything else is a Config error.
 */
export function deviceSysfsPath(device: string): string {
  const m = ADDRESS.exec(device);
  if (m) return `/sys/bus/pci/devices/${(m[1] ?? '0000').toLowerCase()}:${m[2]}:${m[3]}.${m[4]}`.toLowerCase();
  if (device.startsWith('/sys/') && !device.split('/').includes('..')) return device.replace(/\/+$/, '');
  throw new VfioError('Config', `vfio device '${device}' is neither a PCI address (0000:00:03.0) nor a /sys path`, {
    device,
  });
}

/** An open passed-through device: its container (IOMMU context), group and device fd. */
export interface OpenedVfioDevice extends Disposable {
  readonly container: VfioContainerHandle;
  readonly group: VfioGroupHandle;
  readonly device: VfioDeviceHandle;
  /** The device's name in its group (its PCI address). */
  readonly name: string;
}

/**
 * Opens the device at `sysfsPath` the type-1 way: a new container, the device's IOMMU group (which must be
 * viable: every device of it bound to vfio-pci), the type-1 IOMMU (v2 when offered), the device fd. On any
 * failure everything opened so far is closed and a one-line VfioError says what to fix.
 */
export function openVfioDevice(kernel: VfioKernel, sysfsPath: string): OpenedVfioDevice {
  const name = basename(sysfsPath);
  const groupNo = kernel.iommuGroupOf(sysfsPath);
  const undo: (() => void)[] = [];
  try {
    const container = kernel.openContainer();
    undo.push(() => container.close());
    const version = container.apiVersion();
    if (version !== VFIO_API_VERSION) throw new VfioError('Kernel', `VFIO API version ${version}, expected 0`);
    const type = container.checkExtension(VFIO_TYPE1v2_IOMMU)
      ? VFIO_TYPE1v2_IOMMU
      : container.checkExtension(VFIO_TYPE1_IOMMU)
        ? VFIO_TYPE1_IOMMU
        : undefined;
    if (type === undefined) throw new VfioError('Kernel', 'the VFIO container offers no type-1 IOMMU');
    const group = kernel.openGroup(groupNo);
    undo.push(() => group.close());
    if (!group.status().viable)
      throw new VfioError(
        'Device',
        `IOMMU group ${groupNo} of ${name} is not viable: bind every device in /sys/kernel/iommu_groups/${groupNo}/devices to vfio-pci`,
        { group: groupNo },
      );
    group.setContainer(container);
    undo.push(() => group.unsetContainer());
    container.setIommu(type);
    const device = group.device(name);
    undo.push(() => device.close());
    let open = true;
    return {
      container,
      group,
      device,
      name,
      dispose: () => {
        if (!open) return;
        open = false;
        for (const u of undo.reverse()) quietly(u);
      },
    };
  } catch (err) {
    for (const u of undo.reverse()) quietly(u);
    throw err;
  }
}

function quietly(f: () => void): void {
  try {
    f();
  } catch {
    // closing what is half open: the first error is the one that counts
  }
}

/**
 * Maps all of guest RAM for the device's DMA: guest-physical address = IO virtual address, each region
 * from its host mapping (read-only regions readable only). dispose() unmaps. Guest RAM here is fixed for
 * the VM's life (no memory hotplug), so the mapping made at attach stays right.
 */
export function mapGuestRam(container: VfioContainerHandle, memory: GuestMemory): Disposable {
  const done: { iova: bigint; size: bigint }[] = [];
  const unmapAll = () => {
    for (const d of done.splice(0).reverse()) quietly(() => container.unmapDma(d.iova, d.size));
  };
  try {
    for (const r of memory.regions) {
      if (r.hostAddress === 0n)
        throw new VfioError('Device', `guest memory region ${r.range} has no host mapping to give the IOMMU`);
      const flags = VFIO_DMA_MAP_FLAG_READ | (r.readOnly ? 0 : VFIO_DMA_MAP_FLAG_WRITE);
      container.mapDma(r.hostAddress, r.range.start.value, r.range.length, flags);
      done.push({ iova: r.range.start.value, size: r.range.length });
    }
  } catch (err) {
    unmapAll();
    throw err;
  }
  return { dispose: unmapAll };
}
