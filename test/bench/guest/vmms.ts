import { readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parse, stringify } from 'yaml';
import type { GuestKit } from '../../../hosts/guestkit/kit.js';
import { qemuArgv } from '../../../hosts/sandbox/boot.js';
import { projectLayout } from '../../../hosts/sandbox/sandbox.js';

/** The same guest for both VMMs. */
export interface GuestSpec {
  kit: GuestKit;
  /** The initramfs with the bench script (benchInitramfs). */
  initramfs: string;
  memoryMiB: number;
  vcpus: number;
  disk?: { path: string; format: 'raw' | 'qcow2' };
  /** A tap device on the host side (created by the VMM or beforehand). */
  tap?: string;
  /** A scratch folder for generated files. */
  dir: string;
}

/**
 * The kernel command line of hosts/micro.yaml plus `quiet`: both VMMs boot with it (each adds
 * its own virtio-mmio device words). Serial console quiet; the kit's /init still prints its markers.
 */
export function benchCmdline(): string {
  const micro = parse(readFileSync(join(projectLayout().root, 'hosts', 'micro.yaml'), 'utf8')) as {
    boot: { cmdline: string };
  };
  return `${micro.boot.cmdline} quiet`;
}

/** Our `micro` host (hosts/micro.yaml) with the bench's kernel, initramfs, size, disk and NIC. */
export function oursArgv(g: GuestSpec, name: string): { argv: string[]; env: NodeJS.ProcessEnv; config: string } {
  const { root, compiled } = projectLayout();
  const cfg = parse(readFileSync(join(root, 'hosts', 'micro.yaml'), 'utf8')) as {
    machine: Record<string, unknown>;
    boot: Record<string, unknown>;
    plugins: { name: string; id?: string; config?: unknown }[];
  };
  cfg.machine.vcpus = g.vcpus;
  cfg.machine.memory = `${g.memoryMiB}M`;
  cfg.boot.kernel = g.kit.vmlinux;
  cfg.boot.initramfs = g.initramfs;
  cfg.boot.cmdline = benchCmdline();
  if (g.disk) {
    // virtio-blk picks its format among the DiskFormat plugins listed.
    cfg.plugins.push({ name: g.disk.format === 'qcow2' ? 'qcow' : 'raw-disk' });
    cfg.plugins.push({ name: 'virtio-blk', id: 'vda', config: { path: g.disk.path, format: g.disk.format } });
  }
  if (g.tap)
    cfg.plugins.push({
      name: 'virtio-net',
      id: 'net0',
      config: { backend: { kind: 'tap', name: g.tap, create: true } },
    });
  const config = join(g.dir, `${name}.yaml`);
  writeFileSync(config, stringify(cfg));
  return {
    argv: [process.execPath, join(root, 'bin', 'vmm.js'), 'run', config],
    env: { ...process.env, VMM_DIST: relative(root, compiled) || 'dist', VMM_LOG_LEVEL: 'info' },
    config,
  };
}

/** QEMU microvm with KVM, the same PVH vmlinux, initramfs, command line, memory, vCPUs, disk and NIC. */
export function qemuBenchArgv(g: GuestSpec, extra: string[] = []): string[] {
  const args: string[] = [];
  if (g.disk) {
    args.push(
      '-drive',
      `if=none,id=vda,file=${g.disk.path},format=${g.disk.format},cache=writeback`,
      '-device',
      'virtio-blk-device,drive=vda',
    );
  }
  if (g.tap)
    args.push(
      '-netdev',
      `tap,id=n0,ifname=${g.tap},script=no,downscript=no,vhost=off`,
      '-device',
      'virtio-net-device,netdev=n0',
    );
  return [
    'qemu-system-x86_64',
    ...qemuArgv({
      accel: 'kvm',
      machine: 'microvm,x-option-roms=off,rtc=on',
      kernel: g.kit.vmlinux,
      initramfs: g.initramfs,
      append: benchCmdline(),
      memoryMiB: g.memoryMiB,
      cpus: g.vcpus,
      timeoutMs: 0,
      extraArgs: [...args, ...extra],
    }),
  ];
}
