import * as path from 'node:path';
import type { VmConfig as OurVmConfig } from '../../core/config/schema.js';
import { ApiError } from './errors.js';
import type { ChVmConfig } from './schemas.js';
import type { z } from 'zod';
import type { DiskConfig, NetConfig, SerialConfig } from './schemas.js';
import {
  balloonPlugin,
  describeDevices,
  fsPlugin,
  unsupported,
  vfioPlugin,
  vhostUserDiskPlugin,
  vsockPlugin,
} from './device-mapping.js';

/** One entry of our YAML `plugins:` list as the mapping writes it. */
export interface MappedPlugin {
  name: string;
  id?: string;
  config?: Record<string, unknown>;
}

/** Our VM config (the YAML's shape, before validation) that a Cloud Hypervisor VmConfig maps onto. */
export interface MappedVmConfig {
  machine: { vcpus: number; memory: number; onReset: 'exit' | 'restart'; memoryBackend?: 'memfd' };
  boot: { kernel: string; initramfs?: string; cmdline?: string };
  plugins: MappedPlugin[];
}

/** The result of mapping: our config, plus the spec fields that were accepted but mean nothing here. */
export interface Mapping {
  config: MappedVmConfig;
  ignored: string[];
}

/** The hosts the API builds VMs on: `cloud` (hosts/cloud.yaml, the default) or `micro` (hosts/micro.yaml). */
export type ApiHost = 'cloud' | 'micro';

/**
 * The micro host's plugin list (hosts/micro.yaml: virtio over MMIO, a 16550 on COM1, i8042, CMOS RTC, ACPI).
 * test/api/mapping.test.ts checks it against hosts/micro.yaml. Devices added at runtime are not seen by its guests.
 */
export const API_HOST_PLUGINS = ['kvm', 'acpi', 'x86', 'serial', 'i8042', 'rtc', 'boot-timer', 'virtio-mmio'] as const;

/**
 * The cloud host's plugin list (hosts/cloud.yaml, less its disk and NIC: PCI segment 0, ACPI PCI hotplug, virtio
 * over PCI, the ACPI power button). test/api/mapping.test.ts checks it against hosts/cloud.yaml. Disks and NICs
 * added at runtime (vm.add-disk, vm.add-net) are hotplugged: the guest sees them.
 */
export const CLOUD_HOST_PLUGINS = [
  'kvm',
  'acpi',
  'x86',
  'pci',
  'pci-hotplug',
  'virtio-pci',
  'serial',
  'i8042',
  'rtc',
] as const;

/** Each host's plugin list; the serial console and x86's power button are configured by the mapping. */
export const HOST_PLUGINS: Readonly<Record<ApiHost, readonly string[]>> = {
  cloud: CLOUD_HOST_PLUGINS,
  micro: API_HOST_PLUGINS,
};

/** Fields of VmConfig naming devices or features tsvmm does not have; set to anything but "off", they are refused. */
const UNSUPPORTED = [
  'rate_limit_groups',
  'generic_vhost_user',
  'pmem',
  'debug_console',
  'user_devices',
  'vdpa',
  'numa',
  'iommu',
  'watchdog',
  'pvpanic',
  'pci_segments',
  'tpm',
  'landlock_enable',
  'landlock_rules',
] as const;
/** Fields accepted and ignored: both hosts always have an RTC; platform strings have no table to go into yet. */
const IGNORED = ['rtc', 'platform'] as const;

const isSet = (v: unknown): boolean =>
  v !== undefined && v !== false && v !== null && !(Array.isArray(v) && v.length === 0);

/**
 * `path` as given when absolute or a host file name (`guestkit:vmlinux`, core/host), else from `baseDir` (the API
 * server's working directory).
 */
const resolvePath = (p: string, baseDir: string): string =>
  path.isAbsolute(p) || /^[a-z][a-z0-9+.-]*:/.test(p) ? p : path.resolve(baseDir, p);

/** The serial plugin's console for a SerialConfig (absent: none, as Cloud Hypervisor's default 'Null'). */
export function serialConsole(s: z.output<typeof SerialConfig> | undefined, baseDir: string): Record<string, unknown> {
  switch (s?.mode ?? 'Null') {
    case 'Off':
    case 'Null':
      return { kind: 'none' };
    case 'Tty':
      return { kind: 'stdio' };
    case 'File':
      if (!s?.file) throw new ApiError('BadRequest', 'serial: mode File needs a file');
      return { kind: 'file', path: resolvePath(s.file, baseDir) };
    case 'Socket':
      if (!s?.socket) throw new ApiError('BadRequest', 'serial: mode Socket needs a socket');
      return { kind: 'unix-socket', path: resolvePath(s.socket, baseDir) };
    default:
      return unsupported(`serial mode ${s?.mode}`);
  }
}

/** One virtio-blk plugin entry for a DiskConfig (vm.create's disks[] and vm.add-disk). */
export function diskPlugin(d: z.output<typeof DiskConfig>, id: string, baseDir: string): MappedPlugin {
  if (d.vhost_user) return vhostUserDiskPlugin(d, id, baseDir);
  if (!d.path) throw new ApiError('BadRequest', `disk '${id}': path is required (or vhost_user with vhost_socket)`);
  if (d.rate_limiter_config || d.rate_limit_group) unsupported(`disk '${id}': a rate limiter`);
  if (d.image_type && d.image_type !== 'Raw' && d.image_type !== 'Qcow2') unsupported(`image type ${d.image_type}`);
  const config: Record<string, unknown> = {
    path: resolvePath(d.path, baseDir),
    readOnly: d.readonly ?? false,
    direct: d.direct ?? false,
    format: d.image_type === 'Qcow2' ? 'qcow2' : d.image_type === 'Raw' ? 'raw' : 'auto',
    allowBacking: d.backing_files ?? false,
  };
  if (d.readonly !== true && config.format === 'auto') config.format = 'raw'; // never probe a writable image
  if (d.num_queues !== undefined) config.numQueues = d.num_queues;
  if (d.queue_size !== undefined) config.queueSize = d.queue_size;
  if (d.serial !== undefined) config.serial = d.serial;
  return { name: 'virtio-blk', id, config };
}

/** One virtio-net plugin entry for a NetConfig: a tap by name, or a new tap when none is named. */
export function netPlugin(n: z.output<typeof NetConfig>, id: string): MappedPlugin {
  if (n.vhost_user) unsupported('a vhost-user network device');
  if (n.rate_limiter_config) unsupported(`net '${id}': a rate limiter`);
  const config: Record<string, unknown> = {
    backend: n.tap ? { kind: 'tap', name: n.tap } : { kind: 'tap', create: true },
  };
  if (n.mac !== undefined) config.mac = n.mac;
  if (n.mtu !== undefined) config.mtu = n.mtu;
  if (n.num_queues !== undefined) config.queuePairs = Math.max(1, Math.floor(n.num_queues / 2));
  if (n.queue_size !== undefined) config.queueSize = n.queue_size;
  if (n.offload_tso === false || n.offload_csum === false) config.offloads = false;
  return { name: 'virtio-net', id, config };
}

/**
 * Maps a Cloud Hypervisor VmConfig onto our VM config for one of the API's hosts (HOST_PLUGINS; default micro, the
 * API server passes its own): payload -> boot, cpus.boot_vcpus -> machine.vcpus, memory.size -> machine.memory,
 * serial -> the serial plugin's console, disks[] -> virtio-blk instances (ids `disk<i>` unless given), net[] ->
 * virtio-net instances (`net<i>`), fs[] -> virtio-fs (`fs<i>`), vsock -> virtio-vsock, balloon -> virtio-balloon,
 * devices[] -> vfio (`vfio<i>`, cloud host only), vhost_user disks -> vhost-user-blk, memory.shared -> memfd. Refuses
 * what tsvmm lacks (firmware, virtio-console, pmem, vDPA...) with an ApiError naming the field. Pure: touches no file.
 */
export function mapVmConfig(ch: ChVmConfig, baseDir: string, host: ApiHost = 'micro'): Mapping {
  const ignored: string[] = [];
  for (const k of UNSUPPORTED) if (isSet(ch[k])) unsupported(`VmConfig.${k}`);
  for (const k of IGNORED) if (ch[k] !== undefined) ignored.push(k);
  const p = ch.payload;
  if (p.firmware || p.igvm) unsupported('booting firmware (payload.firmware, payload.igvm)');
  if (!p.kernel) throw new ApiError('BadRequest', 'payload.kernel is required (tsvmm boots a kernel directly)');
  if (ch.console && ch.console.mode !== 'Off' && ch.console.mode !== 'Null')
    unsupported(`a virtio console (console.mode ${ch.console.mode}; use serial, or console mode Off)`);
  if (ch.memory?.hotplug_size || ch.memory?.zones?.length) unsupported('memory hotplug and zones');
  if (ch.memory?.hugepages) unsupported('hugepages');
  if (ch.devices?.length && host !== 'cloud')
    unsupported('VFIO devices on the micro host (no PCI; use the cloud host)');
  // Cloud Hypervisor's rng is an entropy device every guest gets; tsvmm's virtio-rng is an out-of-tree plugin
  // (examples/virtio-rng), so the field is accepted and the guest relies on RDRAND and its own jitter entropy
  if (ch.rng !== undefined) ignored.push('rng');
  if (ch.cpus && ch.cpus.max_vcpus < ch.cpus.boot_vcpus)
    throw new ApiError('BadRequest', 'cpus: max_vcpus < boot_vcpus');
  if (ch.cpus && ch.cpus.max_vcpus > ch.cpus.boot_vcpus) ignored.push('cpus.max_vcpus');

  const plugins: MappedPlugin[] = HOST_PLUGINS[host].map((name) => {
    if (name === 'serial') return { name, config: { port: 'COM1', console: serialConsole(ch.serial, baseDir) } };
    // the cloud host's power button: vm.power-button, and SIGTERM asks the guest to shut down
    if (name === 'x86' && host === 'cloud') return { name, config: { powerButton: true } };
    return { name };
  });
  const disks = ch.disks ?? [];
  // the disk formats are always there: vm.add-disk may add a disk to a VM that booted without one
  plugins.push({ name: 'raw-disk' }, { name: 'qcow' });
  disks.forEach((d, i) => plugins.push(diskPlugin(d, d.id ?? `disk${i}`, baseDir)));
  (ch.net ?? []).forEach((n, i) => plugins.push(netPlugin(n, n.id ?? `net${i}`)));
  (ch.fs ?? []).forEach((f, i) => plugins.push(fsPlugin(f, f.id ?? `fs${i}`, baseDir)));
  if (ch.vsock) plugins.push(vsockPlugin(ch.vsock, ch.vsock.id ?? 'vsock0', baseDir));
  if (ch.balloon) plugins.push(balloonPlugin(ch.balloon, ch.balloon.id ?? 'balloon0'));
  (ch.devices ?? []).forEach((d, i) => plugins.push(vfioPlugin(d, d.id ?? `vfio${i}`)));
  const ids = plugins.filter((x) => x.id).map((x) => x.id!);
  const dup = ids.find((x, i) => ids.indexOf(x) !== i);
  if (dup) throw new ApiError('AlreadyExists', `two devices have the id '${dup}'`);

  const boot: MappedVmConfig['boot'] = { kernel: resolvePath(p.kernel, baseDir) };
  if (p.initramfs) boot.initramfs = resolvePath(p.initramfs, baseDir);
  if (p.cmdline !== undefined) boot.cmdline = p.cmdline;
  const memory = ch.memory?.size ?? 512 * 1024 * 1024;
  const machine: MappedVmConfig['machine'] = { vcpus: ch.cpus?.boot_vcpus ?? 1, memory, onReset: 'restart' };
  // shared: guest RAM another process can map (vhost-user back ends; they also get it without asking)
  if (ch.memory?.shared) machine.memoryBackend = 'memfd';
  return {
    config: { machine, boot, plugins },
    ignored,
  };
}

/** A Cloud Hypervisor VmConfig describing one of our configs (vm.info for a VM that `vmm run` started). */
export function describeVmConfig(c: OurVmConfig, baseDir: string): ChVmConfig {
  const b = c.boot;
  const disks: z.output<typeof DiskConfig>[] = [];
  const net: z.output<typeof NetConfig>[] = [];
  const devices = describeDevices(c, baseDir);
  for (const p of c.plugins) {
    const id = p.id ?? p.name;
    const cfg = (p.config ?? {}) as Record<string, unknown>;
    if (p.name === 'virtio-blk' && typeof cfg.path === 'string')
      disks.push({ id, path: resolvePath(cfg.path, baseDir), readonly: cfg.readOnly === true });
    if (p.name === 'vhost-user-blk' && typeof cfg.socket === 'string')
      disks.push({ id, vhost_user: true, vhost_socket: resolvePath(cfg.socket, baseDir) });
    if (p.name === 'virtio-net') {
      const be = cfg.backend as { kind?: string; name?: string } | undefined;
      net.push({ id, ...(be?.kind === 'tap' && be.name ? { tap: be.name } : {}) });
    }
  }
  return {
    payload: {
      ...(b ? { kernel: b.kernel, cmdline: b.cmdline } : {}),
      ...(b?.initramfs ? { initramfs: b.initramfs } : {}),
    },
    cpus: { boot_vcpus: c.machine.vcpus, max_vcpus: c.machine.vcpus },
    memory: { size: Number(c.machine.memory) },
    ...(disks.length ? { disks } : {}),
    ...(net.length ? { net } : {}),
    ...devices,
  };
}
