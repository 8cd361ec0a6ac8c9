import { readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parse, stringify } from 'yaml';
import type { GuestKit } from '../../../hosts/guestkit/kit.js';
import { qemuArgv } from '../../../hosts/sandbox/boot.js';
import { projectLayout } from '../../../hosts/sandbox/sandbox.js';

/**
 * How the guest's virtio devices reach it. `mmio`: ours = hosts/micro.yaml, the peer = QEMU `-M microvm` with
 * virtio-*-device. `pci`: ours = hosts/cloud.yaml (PCI, ACPI, virtio-pci), the peer = QEMU `-M q35` with
 * virtio-*-pci (its default firmware, SeaBIOS; NIC option ROM off: nothing boots from it).
 */
export type Transport = 'mmio' | 'pci';

const HOST_YAML: Record<Transport, string> = { mmio: 'micro.yaml', pci: 'cloud.yaml' };
const PEER_MACHINE: Record<Transport, string> = { mmio: 'microvm,x-option-roms=off,rtc=on', pci: 'q35' };
const PEER_DEVICE: Record<Transport, string> = { mmio: 'device', pci: 'pci' };

/** The peer's machine and devices in a line, for a row's `peer` field (`what`: e.g. `virtio-blk-%`). */
export function peerName(t: Transport, what: string): string {
  return `QEMU -M ${t === 'mmio' ? 'microvm' : 'q35'} ${what.replace('%', PEER_DEVICE[t])}`;
}

/** The same guest for both VMMs. */
export interface GuestSpec {
  kit: GuestKit;
  /** Default `mmio` (micro vs QEMU microvm). */
  transport?: Transport;
  /** The initramfs with the bench script (benchInitramfs). */
  initramfs: string;
  memoryMiB: number;
  vcpus: number;
  disk?: { path: string; format: 'raw' | 'qcow2' };
  /** A tap device on the host side (created by the VMM or beforehand). */
  tap?: string;
  /** vhost-user back ends already listening: a vhost-user-blk disk and a virtio-fs share (guest RAM in a memfd). */
  vhost?: { blkSocket?: string; fs?: { socket: string; tag: string } };
  /** A host PCI function bound to vfio-pci, passed through (pci transport): our vfio plugin / QEMU's vfio-pci. */
  vfio?: string;
  /** A scratch folder for generated files. */
  dir: string;
  /** Words added to both VMMs' kernel command line (e.g. `initcall_debug`). */
  cmdlineExtra?: string;
}

function hostConfig(t: Transport): {
  machine: Record<string, unknown>;
  boot: Record<string, unknown>;
  plugins: { name: string; id?: string; config?: unknown }[];
} {
  return parse(readFileSync(join(projectLayout().root, 'hosts', HOST_YAML[t]), 'utf8')) as ReturnType<
    typeof hostConfig
  >;
}

/**
 * The kernel command line of the host's YAML (micro or cloud) plus `quiet`: both VMMs boot with it (on micro each
 * adds its own virtio-mmio device words). Serial console quiet; the kit's /init still prints its markers.
 */
export function benchCmdline(t: Transport = 'mmio'): string {
  return `${String(hostConfig(t).boot.cmdline)} quiet`;
}

const withExtra = (cmdline: string, g: GuestSpec): string =>
  g.cmdlineExtra ? `${cmdline} ${g.cmdlineExtra}` : cmdline;

/**
 * Our host for the transport (hosts/micro.yaml or hosts/cloud.yaml, the latter without its own disk and NIC) with
 * the bench's kernel, initramfs, size, disk, NIC and vhost-user devices.
 */
export function oursArgv(g: GuestSpec, name: string): { argv: string[]; env: NodeJS.ProcessEnv; config: string } {
  const { root, compiled } = projectLayout();
  const t = g.transport ?? 'mmio';
  const cfg = hostConfig(t);
  cfg.plugins = cfg.plugins.filter((p) => p.name !== 'virtio-blk' && p.name !== 'virtio-net');
  const add = (p: { name: string; id?: string; config?: unknown }) => {
    if (p.id || !cfg.plugins.some((q) => q.name === p.name)) cfg.plugins.push(p);
  };
  cfg.machine.vcpus = g.vcpus;
  cfg.machine.memory = `${g.memoryMiB}M`;
  cfg.boot.kernel = g.kit.vmlinux;
  cfg.boot.initramfs = g.initramfs;
  cfg.boot.cmdline = withExtra(benchCmdline(t), g);
  if (g.disk) {
    // virtio-blk picks its format among the DiskFormat plugins listed.
    add({ name: g.disk.format === 'qcow2' ? 'qcow' : 'raw-disk' });
    add({ name: 'virtio-blk', id: 'vda', config: { path: g.disk.path, format: g.disk.format } });
  }
  if (g.tap) add({ name: 'virtio-net', id: 'net0', config: { backend: { kind: 'tap', name: g.tap, create: true } } });
  if (g.vhost) cfg.machine.memoryBackend = 'memfd';
  if (g.vhost?.blkSocket) add({ name: 'vhost-user-blk', id: 'vub0', config: { socket: g.vhost.blkSocket } });
  if (g.vhost?.fs) add({ name: 'virtio-fs', id: 'fs0', config: { socket: g.vhost.fs.socket, tag: g.vhost.fs.tag } });
  if (g.vfio) add({ name: 'vfio', id: 'vfio0', config: { device: g.vfio } });
  const config = join(g.dir, `${name}.yaml`);
  writeFileSync(config, stringify(cfg));
  return {
    argv: [process.execPath, join(root, 'bin', 'vmm.js'), 'run', config],
    // VMM_TIMINGS: the start-up marks on stderr (boot.ts logs where the start-up went)
    env: { ...process.env, VMM_DIST: relative(root, compiled) || 'dist', VMM_LOG_LEVEL: 'info', VMM_TIMINGS: '1' },
    config,
  };
}

/**
 * QEMU with KVM (microvm or q35 by transport), the same PVH vmlinux, initramfs, command line, memory, vCPUs, disk,
 * NIC and vhost-user devices (guest RAM then in a shared memfd, as vhost-user needs).
 */
export function qemuBenchArgv(g: GuestSpec, extra: string[] = []): string[] {
  const t = g.transport ?? 'mmio';
  const dev = (kind: string, props: string) => ['-device', `${kind}-${PEER_DEVICE[t]},${props}`];
  const args: string[] = [];
  if (g.disk) {
    args.push('-drive', `if=none,id=vda,file=${g.disk.path},format=${g.disk.format},cache=writeback`);
    args.push(...dev('virtio-blk', 'drive=vda'));
  }
  if (g.tap) {
    args.push('-netdev', `tap,id=n0,ifname=${g.tap},script=no,downscript=no,vhost=off`);
    args.push(...dev('virtio-net', t === 'pci' ? 'netdev=n0,romfile=' : 'netdev=n0'));
  }
  if (g.vhost?.blkSocket) {
    args.push('-chardev', `socket,id=vub0,path=${g.vhost.blkSocket}`, ...dev('vhost-user-blk', 'chardev=vub0'));
  }
  if (g.vhost?.fs) {
    args.push('-chardev', `socket,id=vfs0,path=${g.vhost.fs.socket}`);
    args.push(...dev('vhost-user-fs', `chardev=vfs0,tag=${g.vhost.fs.tag}`));
  }
  if (g.vfio) args.push('-device', `vfio-pci,host=${g.vfio},rombar=0`);
  return [
    'qemu-system-x86_64',
    ...qemuArgv({
      accel: 'kvm',
      machine: PEER_MACHINE[t],
      kernel: g.kit.vmlinux,
      initramfs: g.initramfs,
      append: withExtra(benchCmdline(t), g),
      sharedMemory: g.vhost !== undefined,
      memoryMiB: g.memoryMiB,
      cpus: g.vcpus,
      timeoutMs: 0,
      extraArgs: [...args, ...extra],
    }),
  ];
}
