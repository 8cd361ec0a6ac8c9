import * as path from 'node:path';
import type { z } from 'zod';
import { parseSize } from '../../core/config/schema.js';
import { ApiError } from './errors.js';
import type { BalloonConfig, DeviceConfig, DiskConfig, FsConfig, VsockConfig } from './schemas.js';

/**
 * Cloud Hypervisor's device configs that tsvmm serves with its own plugins, as entries of our `plugins:` list:
 * virtio-fs and vhost-user-blk (vhost-user back ends), virtio-vsock (Unix sockets on the host), virtio-balloon and
 * VFIO passthrough. Used by vm.create's mapping and by the hotplug routes (vm.add-fs, vm.add-vsock, vm.add-device).
 * Pure: touches no file. What tsvmm cannot honour (a virtual IOMMU, PCI segments other than 0) is refused by name.
 */

/** One entry of our YAML `plugins:` list. */
export interface DevicePlugin {
  name: string;
  id: string;
  config: Record<string, unknown>;
}

/** Throws the API's one-line "not supported" error for `what` (shared with mapping.ts). */
export const unsupported = (what: string): never => {
  throw new ApiError('Unsupported', `${what} is not supported by tsvmm`);
};

/** Paths as given when absolute, else from `baseDir` (the API server's working directory). */
const resolvePath = (p: string, baseDir: string): string => (path.isAbsolute(p) ? p : path.resolve(baseDir, p));

/** Refuses the placement fields tsvmm has no model for: a virtual IOMMU and PCI segments other than 0. */
function placementOnly(what: string, d: { iommu?: boolean; pci_segment?: number }): void {
  if (d.iommu) unsupported(`${what}: a virtual IOMMU (iommu: true)`);
  if (d.pci_segment !== undefined && d.pci_segment !== 0) unsupported(`${what}: PCI segment ${d.pci_segment}`);
}

/** A virtio-fs share: the vhost-user back end's socket (virtiofsd) and the tag the guest mounts. */
export function fsPlugin(f: z.output<typeof FsConfig>, id: string, baseDir: string): DevicePlugin {
  placementOnly(`fs '${id}'`, f);
  if (f.queue_size < 4 || f.queue_size > 1024 || (f.queue_size & (f.queue_size - 1)) !== 0)
    throw new ApiError('BadRequest', `fs '${id}': queue_size ${f.queue_size} is not a power of two in 4..1024`);
  if (f.num_queues < 1 || f.num_queues > 16)
    throw new ApiError('BadRequest', `fs '${id}': num_queues ${f.num_queues} is not in 1..16`);
  return {
    name: 'virtio-fs',
    id,
    config: {
      socket: resolvePath(f.socket, baseDir),
      tag: f.tag,
      numRequestQueues: f.num_queues,
      queueSize: f.queue_size,
    },
  };
}

/** virtio-vsock with Firecracker's Unix-socket host side: guest port P is `<socket>_P` on the host. */
export function vsockPlugin(v: z.output<typeof VsockConfig>, id: string, baseDir: string): DevicePlugin {
  placementOnly(`vsock '${id}'`, v);
  if (v.cid > 0xffff_fffe) throw new ApiError('BadRequest', `vsock '${id}': cid ${v.cid} is above 0xfffffffe`);
  return { name: 'virtio-vsock', id, config: { guestCid: v.cid, udsPath: resolvePath(v.socket, baseDir) } };
}

/** virtio-balloon: `size` is the memory the balloon holds at start (bytes). */
export function balloonPlugin(b: z.output<typeof BalloonConfig>, id: string): DevicePlugin {
  placementOnly(`balloon '${id}'`, b);
  return {
    name: 'virtio-balloon',
    id,
    config: { target: b.size, deflateOnOom: b.deflate_on_oom, freePageReporting: b.free_page_reporting },
  };
}

/** A host PCI device passed through with VFIO, named by its sysfs path (`/sys/bus/pci/devices/0000:01:00.0/`). */
export function vfioPlugin(d: z.output<typeof DeviceConfig>, id: string): DevicePlugin {
  placementOnly(`device '${id}'`, d);
  if (!d.path) throw new ApiError('BadRequest', `device '${id}': path (the device's sysfs folder) is required`);
  if (d.x_nv_gpudirect_clique !== undefined) unsupported(`device '${id}': x_nv_gpudirect_clique`);
  if (d.x_exclude_mmap_bars?.length) unsupported(`device '${id}': x_exclude_mmap_bars`);
  const slot = d.pci_device_id;
  if (slot !== undefined && (slot < 1 || slot > 31))
    throw new ApiError('BadRequest', `device '${id}': pci_device_id ${slot} is not a slot in 1..31`);
  return { name: 'vfio', id, config: { device: d.path.replace(/\/+$/, ''), ...(slot ? { slot } : {}) } };
}

/** A vhost-user-blk disk (vhost_user: true): the back end's socket (e.g. qemu-storage-daemon's export). */
export function vhostUserDiskPlugin(d: z.output<typeof DiskConfig>, id: string, baseDir: string): DevicePlugin {
  placementOnly(`disk '${id}'`, d);
  if (!d.vhost_socket) throw new ApiError('BadRequest', `disk '${id}': vhost_user needs vhost_socket`);
  if (d.path) throw new ApiError('BadRequest', `disk '${id}': a vhost-user disk has no path (its back end has one)`);
  if (d.rate_limiter_config || d.rate_limit_group) unsupported(`disk '${id}': a rate limiter`);
  const config: Record<string, unknown> = { socket: resolvePath(d.vhost_socket, baseDir) };
  if (d.num_queues !== undefined) config.numQueues = d.num_queues;
  if (d.queue_size !== undefined) config.queueSize = d.queue_size;
  return { name: 'vhost-user-blk', id, config };
}

/** A size from our config (bytes or '256M'); 0 where it does not parse (vm.info describes, it does not judge). */
function sizeOf(v: number | string): number {
  try {
    return Number(parseSize(v));
  } catch {
    return 0;
  }
}

/** The fs, vsock, balloon and VFIO parts of a Cloud Hypervisor VmConfig describing one of our configs (vm.info). */
export function describeDevices(
  c: { plugins: readonly { name?: string; id?: string; config?: unknown }[] },
  baseDir: string,
): {
  fs?: z.output<typeof FsConfig>[];
  vsock?: z.output<typeof VsockConfig>;
  balloon?: z.output<typeof BalloonConfig>;
  devices?: z.output<typeof DeviceConfig>[];
} {
  const out: ReturnType<typeof describeDevices> = {};
  for (const p of c.plugins) {
    const id = p.id ?? p.name ?? '';
    const cfg = (p.config ?? {}) as Record<string, unknown>;
    const num = (v: unknown, d: number): number => (typeof v === 'number' ? v : d);
    if (p.name === 'virtio-fs' && typeof cfg.socket === 'string' && typeof cfg.tag === 'string') {
      const fs = { id, tag: cfg.tag, socket: resolvePath(cfg.socket, baseDir) };
      (out.fs ??= []).push({ ...fs, num_queues: num(cfg.numRequestQueues, 1), queue_size: num(cfg.queueSize, 128) });
    }
    if (p.name === 'virtio-vsock' && typeof cfg.udsPath === 'string')
      out.vsock = { id, cid: num(cfg.guestCid, 3), socket: resolvePath(cfg.udsPath, baseDir) };
    if (p.name === 'virtio-balloon') {
      const t = cfg.target;
      const size = typeof t === 'bigint' ? Number(t) : typeof t === 'number' || typeof t === 'string' ? sizeOf(t) : 0;
      out.balloon = {
        id,
        size,
        deflate_on_oom: cfg.deflateOnOom === true,
        free_page_reporting: cfg.freePageReporting !== false,
      };
    }
    if (p.name === 'vfio' && typeof cfg.device === 'string') (out.devices ??= []).push({ id, path: cfg.device });
  }
  return out;
}
