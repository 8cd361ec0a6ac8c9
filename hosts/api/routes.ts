import type { z } from 'zod';
import { formatPciAddress } from '../../core/pci/address.js';
import { Tokens } from '../../core/tokens.js';
import type { AssembledVm } from '../../core/vmm/assemble.js';
import { pciAttachmentOf } from './device-tree.js';
import { ApiError } from './errors.js';
import { fsPlugin, vfioPlugin, vsockPlugin } from './device-mapping.js';
import { diskPlugin, netPlugin } from './mapping.js';
import * as S from './schemas.js';
import type { ApiVmm } from './vmm.js';

/** What a route handler gets besides its body: the VMM, and a hook that runs once the answer is sent. */
export interface RouteContext {
  vmm: ApiVmm;
  /** Runs `fn` after the response went out (vmm.shutdown closes the server then). */
  afterResponse(fn: () => void): void;
  /** Closes the server and ends the VMM (vmm.shutdown), called after the answer went out. */
  exitVmm(): void;
}

/** One endpoint: its method, its body's schema (when it takes one) and what it does. */
export interface Route<S extends z.ZodType = z.ZodType> {
  method: 'GET' | 'PUT';
  body?: S;
  /** Resolves with the JSON answer (200) or undefined (204). */
  handle(ctx: RouteContext, body: z.output<S>): unknown;
}

const route = <T extends z.ZodType>(r: Route<T>): Route => r as unknown as Route;

/** `file:///dir` (CH's snapshot URLs) -> '/dir'; anything else is refused. */
export function fileUrlPath(url: string, field: string): string {
  const m = /^file:\/\/(\/.*)$/.exec(url);
  if (!m) throw new ApiError('BadRequest', `${field}: expected file:///<absolute folder>, got '${url}'`);
  try {
    return decodeURIComponent(m[1]);
  } catch {
    throw new ApiError('BadRequest', `${field}: '${url.slice(0, 200)}' is not valid percent-encoding`);
  }
}

/** The id of a runtime device when the caller gave none: `<prefix><n>` not yet used in the VM. */
function freshId(ctx: RouteContext, prefix: string): string {
  const vm = ctx.vmm.requireRunning('add a device to');
  const used = new Set(vm.plan.plugins.map((p) => p.instance));
  for (let i = 0; ; i++) if (!used.has(`${prefix}${i}`)) return `${prefix}${i}`;
}

async function addDevice(ctx: RouteContext, entry: { name: string; id: string; config?: unknown }): Promise<unknown> {
  const vm = ctx.vmm.requireRunning('add a device to');
  const add = ctx.vmm.ext.addDevice;
  if (!add) throw new ApiError('Unsupported', 'adding devices to a running VM is not available yet (hotplug)');
  const r = (await add(vm, entry)) as { id: string; bdf?: string };
  const bdf = r.bdf ?? pciBdf(vm, r.id);
  ctx.vmm.emit('device', 'device-added', { id: r.id, plugin: entry.name, ...(bdf ? { bdf } : {}) });
  return { id: r.id, bdf: bdf ?? '' };
}

/** The PCI address of device `id` (the cloud host's functions), or undefined (virtio-mmio, no PCI bus). */
function pciBdf(vm: AssembledVm, id: string): string | undefined {
  if (!vm.container?.isRegistered(Tokens.PciBus.token, true)) return undefined;
  const a = pciAttachmentOf(vm.container.resolve(Tokens.PciBus.token).attachments(), id);
  return a && formatPciAddress(a.address);
}

/**
 * vm.resize: the balloon's target (desired_balloon, bytes) through the VM's Balloon service; vCPUs and RAM cannot
 * change here (no CPU or memory hotplug), so asking for other values than the VM's is refused.
 */
function resizeVm(vm: AssembledVm, b: z.output<typeof S.VmResize>): void {
  const m = vm.plan.config.machine;
  const memory = BigInt(m.memory);
  if (b.desired_vcpus !== undefined && b.desired_vcpus !== m.vcpus)
    throw new ApiError('Unsupported', `resizing to ${b.desired_vcpus} vCPUs (CPU hotplug) is not supported by tsvmm`);
  if (b.desired_ram !== undefined && BigInt(b.desired_ram) !== memory)
    throw new ApiError('Unsupported', 'resizing guest RAM (memory hotplug) is not supported by tsvmm; use a balloon');
  if (b.desired_balloon === undefined) return;
  if (!vm.container.isRegistered(Tokens.Balloon.token, true))
    throw new ApiError('BadRequest', 'the VM has no balloon (add balloon to its VmConfig)');
  const size = BigInt(b.desired_balloon);
  if (size > memory)
    throw new ApiError('BadRequest', `desired_balloon ${size} is more than the guest's ${memory} bytes of RAM`);
  vm.container.resolve(Tokens.Balloon.token).setTarget(size);
}

/** The endpoints tsvmm serves, by path under /api/v1 (Cloud Hypervisor's names). */
export const ROUTES: Readonly<Record<string, Route>> = {
  'vmm.ping': route({ method: 'GET', handle: (c) => c.vmm.ping() }),
  'vmm.shutdown': route({
    method: 'PUT',
    handle: async (c) => {
      await c.vmm.stopAll();
      c.afterResponse(() => c.exitVmm());
    },
  }),
  'vm.create': route({ method: 'PUT', body: S.VmConfig, handle: (c, b) => c.vmm.create(b) }),
  'vm.boot': route({ method: 'PUT', handle: (c) => c.vmm.boot() }),
  'vm.delete': route({ method: 'PUT', handle: (c) => c.vmm.delete() }),
  'vm.shutdown': route({ method: 'PUT', handle: (c) => c.vmm.shutdown() }),
  'vm.reboot': route({ method: 'PUT', handle: (c) => c.vmm.reboot() }),
  'vm.power-button': route({ method: 'PUT', handle: (c) => c.vmm.powerButton() }),
  'vm.pause': route({ method: 'PUT', handle: (c) => c.vmm.pause() }),
  'vm.resume': route({ method: 'PUT', handle: (c) => c.vmm.resume() }),
  'vm.info': route({ method: 'GET', handle: (c) => c.vmm.info() }),
  'vm.counters': route({ method: 'GET', handle: (c) => c.vmm.counters() }),
  'vm.add-disk': route({
    method: 'PUT',
    body: S.DiskConfig,
    handle: (c, b) => {
      const id = b.id ?? freshId(c, 'disk');
      return addDevice(c, diskPlugin(b, id, process.cwd()) as { name: string; id: string });
    },
  }),
  'vm.add-net': route({
    method: 'PUT',
    body: S.NetConfig,
    handle: (c, b) => {
      const id = b.id ?? freshId(c, 'net');
      return addDevice(c, netPlugin(b, id) as { name: string; id: string });
    },
  }),
  'vm.add-device': route({
    method: 'PUT',
    body: S.DeviceConfig,
    // VFIO passthrough, hotplugged on the cloud host's PCI bus
    handle: (c, b) => addDevice(c, vfioPlugin(b, b.id ?? freshId(c, 'vfio'))),
  }),
  'vm.add-fs': route({
    method: 'PUT',
    body: S.FsConfig,
    // the VM's memory must be shareable (memory.shared, or a vhost-user device at boot): the plugin says so if not
    handle: (c, b) => addDevice(c, fsPlugin(b, b.id ?? freshId(c, 'fs'), process.cwd())),
  }),
  'vm.add-vsock': route({
    method: 'PUT',
    body: S.VsockConfig,
    handle: (c, b) => addDevice(c, vsockPlugin(b, b.id ?? freshId(c, 'vsock'), process.cwd())),
  }),
  'vm.remove-device': route({
    method: 'PUT',
    body: S.VmRemoveDevice,
    handle: async (c, b) => {
      const vm = c.vmm.requireRunning('remove a device from');
      const remove = c.vmm.ext.removeDevice;
      if (!remove) throw new ApiError('Unsupported', 'removing devices from a running VM is not available yet');
      await remove(vm, b.id);
      c.vmm.emit('device', 'device-removed', { id: b.id });
    },
  }),
  'vm.resize': route({
    method: 'PUT',
    body: S.VmResize,
    handle: (c, b) => resizeVm(c.vmm.requireRunning('resize'), b),
  }),
  'vm.snapshot': route({
    method: 'PUT',
    body: S.VmSnapshotConfig,
    handle: async (c, b) => {
      const dir = fileUrlPath(b.destination_url, 'destination_url');
      const vm = c.vmm.requireRunning('snapshot');
      if (!c.vmm.isPaused) throw new ApiError('InvalidState', 'pause the VM before a snapshot');
      const snap = c.vmm.ext.snapshot;
      if (!snap) throw new ApiError('Unsupported', 'snapshots are not available yet (migration plugin)');
      await snap(vm, dir);
    },
  }),
  'vm.restore': route({
    method: 'PUT',
    body: S.RestoreConfig,
    handle: (c, b) => c.vmm.restore(fileUrlPath(b.source_url, 'source_url'), b.resume === true),
  }),
  'vm.send-migration': route({
    method: 'PUT',
    body: S.SendMigrationData,
    handle: (c, b) => c.vmm.sendMigration(b.destination_url),
  }),
  'vm.receive-migration': route({
    method: 'PUT',
    body: S.ReceiveMigrationData,
    handle: (c, b) => c.vmm.receiveMigration(b.receiver_url),
  }),
};

/** Paths of the spec tsvmm does not serve: answered with CH's error shape, saying so. */
export const UNSUPPORTED_PATHS: readonly string[] = [
  'vm.resize-disk',
  'vm.resize-zone',
  'vm.add-generic-vhost-user',
  'vm.add-pmem',
  'vm.add-vdpa',
  'vm.add-user-device',
  'vm.coredump',
  'vm.nmi',
];
