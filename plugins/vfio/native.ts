import * as fs from 'node:fs';
import { basename } from 'node:path';
import { alloc, fieldAt, readPrim, writePrim, type StructDef } from '../kvm/abi/layout.js';
import {
  c,
  check,
  errno,
  errnoName,
  MAP_SHARED,
  O_CLOEXEC,
  O_RDWR,
  PROT_READ,
  PROT_WRITE,
} from '../../core/native/libc.js';
import {
  VFIO,
  VFIO_GROUP_FLAGS_CONTAINER_SET,
  VFIO_GROUP_FLAGS_VIABLE,
  VFIO_IRQ_SET_ACTION_MASK,
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_IRQ_SET_ACTION_UNMASK,
  VFIO_IRQ_SET_DATA_BOOL,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_IRQ_SET_DATA_NONE,
  VFIO_REGION_INFO_CAP_SPARSE_MMAP,
  VFIO_REGION_INFO_FLAG_CAPS,
  VFIO_REGION_INFO_FLAG_MMAP,
  vfio_device_info,
  vfio_group_status,
  vfio_info_cap_header,
  vfio_iommu_type1_dma_map,
  vfio_iommu_type1_dma_unmap,
  vfio_irq_info,
  vfio_irq_set,
  vfio_region_info,
  vfio_region_info_cap_sparse_mmap,
  vfio_region_sparse_mmap_area,
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

/** A struct argument: zeroed buffer with argsz set, fields filled from `values`. */
function arg(def: StructDef, values: Record<string, number | bigint> = {}, size = def.size) {
  const a = alloc(size);
  writePrim(a.view, fieldAt(def, 'argsz').offset, 'u32', size);
  for (const [k, v] of Object.entries(values)) {
    const f = fieldAt(def, k);
    writePrim(a.view, f.offset, f.type as 'u32' | 'u64', v);
  }
  const get = (k: string, d: StructDef = def, base = 0) => {
    const f = fieldAt(d, k);
    return readPrim(a.view, base + f.offset, f.type as 'u32' | 'u64');
  };
  return { ...a, get };
}

function ioctl(fd: number, req: number, buf: Buffer | number, what: string): number {
  const r = typeof buf === 'number' ? Number(c.ioctlInt(fd, req, buf)) : Number(c.ioctlPtr(fd, req, buf));
  if (r < 0) {
    const e = errno();
    throw new VfioError('Kernel', `${what} failed: ${errnoName(e)} (${e})`, { errno: e });
  }
  return r;
}

const ACTIONS: Record<VfioIrqAction, number> = {
  mask: VFIO_IRQ_SET_ACTION_MASK,
  unmask: VFIO_IRQ_SET_ACTION_UNMASK,
  trigger: VFIO_IRQ_SET_ACTION_TRIGGER,
};

/** Encodes a vfio_irq_set with its data (exported for the ABI test). */
export function encodeIrqSet(
  index: number,
  action: VfioIrqAction,
  start: number,
  count: number,
  data: VfioIrqData,
): Buffer {
  const item = data.kind === 'none' ? 0 : data.kind === 'bool' ? 1 : 4;
  const items = data.kind === 'none' ? [] : data.kind === 'bool' ? data.values.map(Number) : [...data.fds];
  if (data.kind !== 'none' && items.length !== count)
    throw new VfioError('Kernel', `VFIO_DEVICE_SET_IRQS: ${items.length} data items for ${count} vectors`);
  const kind =
    data.kind === 'none'
      ? VFIO_IRQ_SET_DATA_NONE
      : data.kind === 'bool'
        ? VFIO_IRQ_SET_DATA_BOOL
        : VFIO_IRQ_SET_DATA_EVENTFD;
  const a = arg(vfio_irq_set, { flags: kind | ACTIONS[action], index, start, count }, vfio_irq_set.size + item * count);
  items.forEach((v, i) => {
    const at = vfio_irq_set.size + i * item;
    if (item === 1) a.view.setUint8(at, v);
    else a.view.setInt32(at, v, true);
  });
  return a.buf;
}

/** Parses a region info answer (with its capability chain) into VfioRegionInfo (exported for tests). */
export function decodeRegionInfo(buf: Buffer): VfioRegionInfo {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const r = (k: string) =>
    readPrim(view, fieldAt(vfio_region_info, k).offset, fieldAt(vfio_region_info, k).type as 'u32');
  const flags = Number(r('flags'));
  const size = BigInt(r('size'));
  let areas: { offset: bigint; size: bigint }[] | undefined;
  if (flags & VFIO_REGION_INFO_FLAG_CAPS) {
    let at = Number(r('cap_offset'));
    for (
      let hops = 0;
      at >= vfio_region_info.size && at + vfio_info_cap_header.size <= buf.length && hops < 16;
      hops++
    ) {
      const id = view.getUint16(at, true);
      if (id === VFIO_REGION_INFO_CAP_SPARSE_MMAP) {
        const n = view.getUint32(at + fieldAt(vfio_region_info_cap_sparse_mmap, 'nr_areas').offset, true);
        areas = [];
        for (let i = 0; i < n; i++) {
          const o = at + vfio_region_info_cap_sparse_mmap.size + i * vfio_region_sparse_mmap_area.size;
          if (o + vfio_region_sparse_mmap_area.size > buf.length) break;
          areas.push({ offset: view.getBigUint64(o, true), size: view.getBigUint64(o + 8, true) });
        }
      }
      at = view.getUint32(at + 4, true);
    }
  }
  const mmap = (flags & VFIO_REGION_INFO_FLAG_MMAP) !== 0;
  return {
    index: Number(r('index')),
    flags,
    size,
    offset: BigInt(r('offset')),
    mmapAreas: !mmap ? [] : (areas ?? [{ offset: 0n, size }]).filter((x) => x.size > 0n),
  };
}

class NativeDevice implements VfioDeviceHandle {
  constructor(
    readonly fd: number,
    private readonly name: string,
  ) {}

  info(): VfioDeviceInfo {
    const a = arg(vfio_device_info);
    ioctl(this.fd, VFIO.DEVICE_GET_INFO, a.buf, `VFIO_DEVICE_GET_INFO (${this.name})`);
    return {
      flags: Number(a.get('flags')),
      numRegions: Number(a.get('num_regions')),
      numIrqs: Number(a.get('num_irqs')),
    };
  }

  regionInfo(index: number): VfioRegionInfo {
    let size = vfio_region_info.size;
    for (;;) {
      const a = arg(vfio_region_info, { index }, size);
      ioctl(this.fd, VFIO.DEVICE_GET_REGION_INFO, a.buf, `VFIO_DEVICE_GET_REGION_INFO ${index} (${this.name})`);
      const want = Number(a.get('argsz'));
      if (want > size && size === vfio_region_info.size && want < 1 << 16) {
        size = want; // the capability chain did not fit: ask again with room for it
        continue;
      }
      return decodeRegionInfo(a.buf);
    }
  }

  irqInfo(index: number): VfioIrqInfo {
    const a = arg(vfio_irq_info, { index });
    ioctl(this.fd, VFIO.DEVICE_GET_IRQ_INFO, a.buf, `VFIO_DEVICE_GET_IRQ_INFO ${index} (${this.name})`);
    return { index, flags: Number(a.get('flags')), count: Number(a.get('count')) };
  }

  setIrqs(index: number, action: VfioIrqAction, start: number, count: number, data: VfioIrqData): void {
    const buf = encodeIrqSet(index, action, start, count, data);
    ioctl(
      this.fd,
      VFIO.DEVICE_SET_IRQS,
      buf,
      `VFIO_DEVICE_SET_IRQS ${action} ${index} [${start}+${count}] (${this.name})`,
    );
  }

  reset(): void {
    ioctl(this.fd, VFIO.DEVICE_RESET, 0, `VFIO_DEVICE_RESET (${this.name})`);
  }

  read(offset: bigint, into: Uint8Array): void {
    const n = fs.readSync(this.fd, into, 0, into.length, offset);
    if (n !== into.length)
      throw new VfioError(
        'Kernel',
        `read of ${into.length} bytes at 0x${offset.toString(16)} of ${this.name} gave ${n}`,
      );
  }

  write(offset: bigint, data: Uint8Array): void {
    const n = fs.writeSync(this.fd, data, 0, data.length, Number(offset));
    if (n !== data.length)
      throw new VfioError(
        'Kernel',
        `write of ${data.length} bytes at 0x${offset.toString(16)} of ${this.name} took ${n}`,
      );
  }

  mmap(offset: bigint, size: bigint): VfioMapping {
    const addr = check('mmap', c.mmap(0n, size, PROT_READ | PROT_WRITE, MAP_SHARED, this.fd, offset) as bigint);
    let mapped = true;
    return {
      hostAddress: BigInt(addr),
      size,
      unmap: () => {
        if (mapped) c.munmap(BigInt(addr), size);
        mapped = false;
      },
    };
  }

  close(): void {
    c.close(this.fd);
  }
}

class NativeContainer implements VfioContainerHandle {
  constructor(readonly fd: number) {}

  apiVersion(): number {
    return ioctl(this.fd, VFIO.GET_API_VERSION, 0, 'VFIO_GET_API_VERSION');
  }

  checkExtension(ext: number): boolean {
    return ioctl(this.fd, VFIO.CHECK_EXTENSION, ext, `VFIO_CHECK_EXTENSION ${ext}`) > 0;
  }

  setIommu(type: number): void {
    ioctl(this.fd, VFIO.SET_IOMMU, type, `VFIO_SET_IOMMU ${type}`);
  }

  mapDma(vaddr: bigint, iova: bigint, size: bigint, flags: number): void {
    const a = arg(vfio_iommu_type1_dma_map, { flags, vaddr, iova, size });
    ioctl(this.fd, VFIO.IOMMU_MAP_DMA, a.buf, `VFIO_IOMMU_MAP_DMA 0x${iova.toString(16)}+0x${size.toString(16)}`);
  }

  unmapDma(iova: bigint, size: bigint): void {
    const a = arg(vfio_iommu_type1_dma_unmap, { iova, size });
    ioctl(this.fd, VFIO.IOMMU_UNMAP_DMA, a.buf, `VFIO_IOMMU_UNMAP_DMA 0x${iova.toString(16)}+0x${size.toString(16)}`);
  }

  close(): void {
    c.close(this.fd);
  }
}

class NativeGroup implements VfioGroupHandle {
  constructor(
    readonly fd: number,
    readonly group: number,
  ) {}

  status(): { viable: boolean; containerSet: boolean } {
    const a = arg(vfio_group_status);
    ioctl(this.fd, VFIO.GROUP_GET_STATUS, a.buf, `VFIO_GROUP_GET_STATUS (group ${this.group})`);
    const flags = Number(a.get('flags'));
    return {
      viable: (flags & VFIO_GROUP_FLAGS_VIABLE) !== 0,
      containerSet: (flags & VFIO_GROUP_FLAGS_CONTAINER_SET) !== 0,
    };
  }

  setContainer(container: VfioContainerHandle): void {
    const b = Buffer.alloc(4);
    b.writeInt32LE(container.fd);
    ioctl(this.fd, VFIO.GROUP_SET_CONTAINER, b, `VFIO_GROUP_SET_CONTAINER (group ${this.group})`);
  }

  unsetContainer(): void {
    ioctl(this.fd, VFIO.GROUP_UNSET_CONTAINER, 0, `VFIO_GROUP_UNSET_CONTAINER (group ${this.group})`);
  }

  device(name: string): VfioDeviceHandle {
    const fd = ioctl(this.fd, VFIO.GROUP_GET_DEVICE_FD, Buffer.from(`${name}\0`), `VFIO_GROUP_GET_DEVICE_FD ${name}`);
    return new NativeDevice(fd, name);
  }

  close(): void {
    c.close(this.fd);
  }
}

function open(path: string): number {
  const fd = Number(c.open(path, O_RDWR | O_CLOEXEC, 0));
  if (fd < 0) {
    const e = errno();
    throw new VfioError('Kernel', `open ${path} failed: ${errnoName(e)} (${e})`, { path, errno: e });
  }
  return fd;
}

/** The real VFIO: /dev/vfio/vfio, /dev/vfio/<group>, the device's iommu_group link in sysfs. */
export class NativeVfioKernel implements VfioKernel {
  openContainer(): VfioContainerHandle {
    return new NativeContainer(open('/dev/vfio/vfio'));
  }

  openGroup(group: number): VfioGroupHandle {
    return new NativeGroup(open(`/dev/vfio/${group}`), group);
  }

  iommuGroupOf(sysfsPath: string): number {
    let target: string;
    try {
      target = fs.readlinkSync(`${sysfsPath}/iommu_group`);
    } catch {
      throw new VfioError('Config', `${sysfsPath} has no iommu_group (no such device, or no IOMMU on this host)`, {
        sysfsPath,
      });
    }
    const n = Number(basename(target));
    if (!Number.isInteger(n) || n < 0)
      throw new VfioError('Config', `${sysfsPath}: iommu_group ${target} is not a number`);
    return n;
  }
}
