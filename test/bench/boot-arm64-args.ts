/** The arm64 boot benchmark's fixed facts and QEMU's command line, shared by the host side and L1's driver. */
export const ARM64_BOOT = {
  memoryMiB: 256,
  vcpus: 1,
  /** Both VMMs' kernel command line after `console=` (ours: ttyS0, a 16550 on MMIO; QEMU virt: ttyAMA0, a PL011). */
  cmdline: 'earlycon panic=1 quiet tsvmm.bootmarker=0',
  /** Where L1 holds the arm64 QEMU tree (hosts/sandbox/arm64-qemu.ts). */
  qemuRoot: '/opt/qemu',
  qemuLibs: ['/opt/qemu/usr/lib/aarch64-linux-gnu', '/opt/qemu/lib/aarch64-linux-gnu'],
  peer: 'QEMU -M virt,gic-version=3 -accel kvm -cpu host in the arm64 L1, same Image/initramfs',
} as const;

/** What L1's driver reports: init-marker ms per repeat of each VMM, and why a repeat has none. */
export interface Arm64BootFigures {
  ours: number[];
  qemu: number[];
  problems: string[];
}

/** QEMU's argv for one boot of the guest (same memory, vCPUs and command line as ours). */
export function qemuArm64Argv(kernel: string, initramfs: string): string[] {
  return [
    `${ARM64_BOOT.qemuRoot}/usr/bin/qemu-system-aarch64`,
    ...['-M', 'virt,gic-version=3', '-accel', 'kvm', '-cpu', 'host'],
    ...['-smp', String(ARM64_BOOT.vcpus), '-m', String(ARM64_BOOT.memoryMiB)],
    ...['-nographic', '-nodefaults', '-no-user-config', '-serial', 'stdio'],
    ...['-kernel', kernel, '-initrd', initramfs, '-append', `console=ttyAMA0 ${ARM64_BOOT.cmdline}`],
  ];
}

/** The figures from L1's console (the last `BENCH-ARM64 <json>` line), or undefined. */
export function arm64BootFigures(console: string): Arm64BootFigures | undefined {
  const m = [...console.matchAll(/^BENCH-ARM64 (\{.*\})\r?$/gm)].at(-1);
  return m ? (JSON.parse(m[1]!) as Arm64BootFigures) : undefined;
}
