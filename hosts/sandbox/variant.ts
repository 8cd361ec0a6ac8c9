import type { ModuleRequest } from '../guestkit/modules.js';

/**
 * A different L1 machine for runInSandbox (SandboxOptions.variant): the QEMU machine type and the
 * devices it adds, words for L1's kernel command line, modules L1's initramfs loads, a shell fragment
 * L1 runs before it enters the project's root (bind devices, print what it did), and the disk model
 * for the base and work disks. The default L1 is microvm with virtio-mmio disks; a variant on q35 uses
 * virtio-blk-pci. Variants cannot take shared folders (their virtio-fs devices are virtio-mmio).
 */
export interface SandboxVariant {
  readonly name: string;
  /** -M value. */
  readonly machine: string;
  /** QEMU arguments placed before the disks (an IOMMU must come before the PCI devices it translates for). */
  readonly qemuArgs: readonly string[];
  /** Words appended to L1's kernel command line. */
  readonly append: string;
  /** Modules L1's initramfs loads (with their dependencies) besides the usual ones. */
  readonly modules: readonly ModuleRequest[];
  /** Shell run by L1's stage script before the chroot. */
  readonly stage: string;
  /** The QEMU device model of the base and work disks. */
  readonly diskDevice: string;
}
