import { z } from 'zod';

/**
 * Request bodies of the Cloud Hypervisor API (hosts/api/cloud-hypervisor-openapi.yaml), as zod schemas. Objects are
 * strict: a field the spec does not name is refused (400), so a misspelt field never goes unnoticed. Fields the spec
 * names but tsvmm does not act on are accepted with their spec type; the VmConfig mapping (mapping.ts) refuses the
 * ones that would change what the guest gets.
 */

const int = z.number().int();
const int64 = int.min(Number.MIN_SAFE_INTEGER).max(Number.MAX_SAFE_INTEGER);
const u8 = int.min(0).max(255);
const i16 = int.min(-32768).max(32767);
/** An object the spec describes in more detail than tsvmm reads (rate limiters, topologies): any JSON object. */
const anyObject = z.record(z.string(), z.unknown());

/** PayloadConfig: what to boot. */
export const PayloadConfig = z.strictObject({
  firmware: z.string().optional(),
  kernel: z.string().optional(),
  cmdline: z.string().optional(),
  initramfs: z.string().optional(),
  igvm: z.string().optional(),
  host_data: z.string().optional(),
});

/** CpusConfig (boot_vcpus, max_vcpus required by the spec). */
export const CpusConfig = z.strictObject({
  boot_vcpus: int.min(1),
  max_vcpus: int.min(1),
  topology: anyObject.optional(),
  kvm_hyperv: z.boolean().optional(),
  max_phys_bits: int.optional(),
  nested: z.boolean().optional(),
  affinity: z.array(anyObject).optional(),
  features: anyObject.optional(),
  core_scheduling: z.enum(['Vm', 'Vcpu', 'Off']).optional(),
});

/** MemoryConfig (size in bytes, required). */
export const MemoryConfig = z.strictObject({
  size: int64,
  hotplug_size: int64.optional(),
  hotplugged_size: int64.optional(),
  mergeable: z.boolean().optional(),
  hotplug_method: z.string().optional(),
  shared: z.boolean().optional(),
  hugepages: z.boolean().optional(),
  hugepage_size: int64.optional(),
  prefault: z.boolean().optional(),
  reserve: z.boolean().optional(),
  thp: z.boolean().optional(),
  zones: z.array(anyObject).optional(),
});

/** DiskConfig: vm.add-disk's body and VmConfig.disks[]. */
export const DiskConfig = z.strictObject({
  path: z.string().optional(),
  readonly: z.boolean().optional(),
  direct: z.boolean().optional(),
  iommu: z.boolean().optional(),
  num_queues: int.optional(),
  queue_size: int.optional(),
  vhost_user: z.boolean().optional(),
  vhost_socket: z.string().optional(),
  rate_limiter_config: anyObject.optional(),
  pci_segment: i16.optional(),
  pci_device_id: u8.optional(),
  id: z.string().optional(),
  serial: z.string().optional(),
  rate_limit_group: z.string().optional(),
  queue_affinity: z.array(anyObject).optional(),
  backing_files: z.boolean().optional(),
  sparse: z.boolean().optional(),
  image_type: z.enum(['FixedVhd', 'Qcow2', 'Raw', 'Vhdx', 'Unknown']).optional(),
  lock_granularity: z.enum(['ByteRange', 'Full']).optional(),
});

/** NetConfig: vm.add-net's body and VmConfig.net[]. */
export const NetConfig = z.strictObject({
  tap: z.string().optional(),
  ip: z.string().optional(),
  mask: z.string().optional(),
  mac: z.string().optional(),
  host_mac: z.string().optional(),
  mtu: int.optional(),
  iommu: z.boolean().optional(),
  num_queues: int.optional(),
  queue_size: int.optional(),
  vhost_user: z.boolean().optional(),
  vhost_socket: z.string().optional(),
  vhost_mode: z.string().optional(),
  id: z.string().optional(),
  pci_segment: i16.optional(),
  pci_device_id: u8.optional(),
  rate_limiter_config: anyObject.optional(),
  offload_tso: z.boolean().optional(),
  offload_ufo: z.boolean().optional(),
  offload_csum: z.boolean().optional(),
});

/** FsConfig: vm.add-fs's body and VmConfig.fs[] (a virtio-fs share served by a vhost-user back end). */
export const FsConfig = z.strictObject({
  tag: z.string(),
  socket: z.string(),
  num_queues: int.default(1),
  queue_size: int.default(1024),
  pci_segment: i16.optional(),
  pci_device_id: u8.optional(),
  id: z.string().optional(),
});

/** VsockConfig: vm.add-vsock's body and VmConfig.vsock (guest ports proxied to `<socket>_<port>` on the host). */
export const VsockConfig = z.strictObject({
  cid: int64.min(3),
  socket: z.string(),
  iommu: z.boolean().optional(),
  pci_segment: i16.optional(),
  pci_device_id: u8.optional(),
  id: z.string().optional(),
});

/** BalloonConfig: VmConfig.balloon (size in bytes). */
export const BalloonConfig = z.strictObject({
  id: z.string().optional(),
  pci_segment: i16.optional(),
  pci_device_id: u8.optional(),
  iommu: z.boolean().optional(),
  size: int64.min(0),
  deflate_on_oom: z.boolean().default(false),
  free_page_reporting: z.boolean().default(false),
});

/** RngConfig: VmConfig.rng (the entropy source; tsvmm has no in-tree virtio-rng, see mapping.ts). */
export const RngConfig = z.strictObject({
  id: z.string().optional(),
  pci_segment: i16.optional(),
  pci_device_id: u8.optional(),
  iommu: z.boolean().optional(),
  src: z.string(),
});

const ConsoleMode = z.enum(['Off', 'Pty', 'Tty', 'File', 'Socket', 'Null']);
/** SerialConfig: where the guest's UART goes. */
export const SerialConfig = z.strictObject({
  file: z.string().optional(),
  socket: z.string().optional(),
  mode: ConsoleMode,
});
/** ConsoleConfig: the virtio-console (tsvmm has none: only mode Off/Null is accepted by the mapping). */
export const ConsoleConfig = z.strictObject({
  file: z.string().optional(),
  socket: z.string().optional(),
  mode: ConsoleMode,
  iommu: z.boolean().optional(),
  id: z.string().optional(),
  pci_segment: i16.optional(),
  pci_device_id: u8.optional(),
});

/** DeviceConfig: a VFIO device (vm.add-device). */
export const DeviceConfig = z.strictObject({
  path: z.string().optional(),
  iommu: z.boolean().optional(),
  pci_segment: i16.optional(),
  pci_device_id: u8.optional(),
  id: z.string().optional(),
  x_nv_gpudirect_clique: int.min(-128).max(127).optional(),
  x_exclude_mmap_bars: z.array(int64).optional(),
});

/**
 * VmConfig (vm.create): payload required. The keys tsvmm maps are typed; the others are accepted as JSON of the
 * right outer type so that mapping.ts can refuse them by name when they ask for something tsvmm lacks.
 */
export const VmConfig = z.strictObject({
  cpus: CpusConfig.optional(),
  memory: MemoryConfig.optional(),
  payload: PayloadConfig,
  rate_limit_groups: z.array(anyObject).optional(),
  disks: z.array(DiskConfig).optional(),
  net: z.array(NetConfig).optional(),
  rng: RngConfig.optional(),
  balloon: BalloonConfig.optional(),
  fs: z.array(FsConfig).optional(),
  generic_vhost_user: z.array(anyObject).optional(),
  pmem: z.array(anyObject).optional(),
  serial: SerialConfig.optional(),
  console: ConsoleConfig.optional(),
  debug_console: anyObject.optional(),
  devices: z.array(DeviceConfig).optional(),
  user_devices: z.array(anyObject).optional(),
  vdpa: z.array(anyObject).optional(),
  vsock: VsockConfig.optional(),
  numa: z.array(anyObject).optional(),
  iommu: z.boolean().optional(),
  watchdog: z.boolean().optional(),
  rtc: anyObject.optional(),
  pvpanic: z.boolean().optional(),
  pci_segments: z.array(anyObject).optional(),
  platform: anyObject.optional(),
  tpm: anyObject.optional(),
  landlock_enable: z.boolean().optional(),
  landlock_rules: z.array(anyObject).optional(),
});
/** A Cloud Hypervisor VmConfig as vm.create accepts it. */
export type ChVmConfig = z.output<typeof VmConfig>;

/** VmResize: vCPUs, RAM and the balloon (tsvmm resizes only the balloon). */
export const VmResize = z.strictObject({
  desired_vcpus: int.min(1).optional(),
  desired_ram: int64.optional(),
  desired_balloon: int64.min(0).optional(),
});

/** VmRemoveDevice. */
export const VmRemoveDevice = z.strictObject({ id: z.string().min(1) });
/** VmSnapshotConfig (destination_url: `file:///dir`). */
export const VmSnapshotConfig = z.strictObject({ destination_url: z.string().min(1) });
/** RestoreConfig (source_url: `file:///dir`). */
export const RestoreConfig = z.strictObject({
  source_url: z.string().min(1),
  prefault: z.boolean().optional(),
  memory_restore_mode: z.enum(['Copy', 'OnDemand']).optional(),
  resume: z.boolean().optional(),
  zone_updates: z.array(anyObject).optional(),
});
const MigrationMode = z.enum(['Precopy', 'Postcopy']);
/** SendMigrationData (destination_url: `tcp:host:port` or `unix:path`). */
export const SendMigrationData = z.strictObject({
  destination_url: z.string().min(1),
  local: z.boolean().optional(),
  downtime_ms: int64.min(1).optional(),
  timeout_s: int64.min(1).optional(),
  timeout_strategy: z.enum(['Cancel', 'Ignore']).optional(),
  connections: int.min(1).max(128).optional(),
  tls_dir: z.string().optional(),
  memory_mode: MigrationMode.optional(),
});
/** ReceiveMigrationData (receiver_url: `tcp:host:port` or `unix:path`). */
export const ReceiveMigrationData = z.strictObject({
  receiver_url: z.string().min(1),
  tls_dir: z.string().optional(),
  memory_mode: MigrationMode.optional(),
  zone_updates: z.array(anyObject).optional(),
});
