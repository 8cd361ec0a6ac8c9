import type { ArchExtensionKey } from '../../core/hypervisor/extension.js';
import type { VcpuState } from '../../core/hypervisor/vcpu-state.js';
import { KvmError } from './errors.js';
import type { KvmVcpu } from './vcpu.js';
import type { KvmVm } from './vm.js';
import { KVM_ARM64_ARCH } from './arm64/arch.js';
import { KVM_X86 } from './x86/arch.js';

/** The arch part of one KvmVm: its extensions and what follows the irqchip's creation. */
export interface KvmArchVm {
  extension<T>(key: ArchExtensionKey<T>): T | undefined;
  /** Creates the arch's other in-kernel devices once the irqchip exists (x86: the PIT). */
  afterIrqChip(): void;
  /** Creates the irqchip in place of KVM_CREATE_IRQCHIP (arm64: the GICv3 + ITS through the device API). */
  createIrqChip?(): void;
  /** KVM_IRQ_LINE's irq word for a GSI where it is not the GSI itself (arm64: type and INTID of an SPI). */
  irqLine?(gsi: number): number;
  /**
   * Takes an irqfd (de)registration the irqchip cannot accept yet and runs it once it can (arm64: KVM_IRQFD
   * answers EAGAIN until the vGIC is initialised, which needs every vCPU); false: run it now.
   */
  deferIrqfd?(op: () => void): boolean;
  /** Releases what the arch part holds (arm64: the vGIC device fds) when the VM closes. */
  close?(): void;
  /** The VM's opaque state blobs (x86: kvmclock, irqchip, PIT). */
  saveState(): Record<string, Uint8Array>;
  /** Restores saveState's blobs, all checked before the first ioctl. */
  restoreState(s: Record<string, Uint8Array>): void;
}

/** The arch part of one KvmVcpu: its extensions, its whole state and what the runner reports. */
export interface KvmArchVcpu {
  extension<T>(key: ArchExtensionKey<T>): T | undefined;
  saveState(): VcpuState;
  /** Validates untrusted input fully before setting anything. */
  restoreState(state: unknown): void;
}

/** What KVM does differently per host architecture: the x86_64 part (./x86) and the arm64 part (./arm64). */
export interface KvmArch {
  /** The arch name vCPU state containers and extension keys carry. */
  readonly name: string;
  vm(vm: KvmVm): KvmArchVm;
  vcpu(vcpu: KvmVcpu): KvmArchVcpu;
}

/**
 * The KvmArch of this host (process.arch); a clear KvmError on an architecture without one. Main thread
 * only (it loads the arch's state schemas); vCPU workers read run states through run-state.ts.
 */
export function hostKvmArch(): KvmArch {
  if (process.arch === 'x64') return KVM_X86;
  if (process.arch === 'arm64') return KVM_ARM64_ARCH;
  throw new KvmError('InvalidArgument', `the kvm plugin has no support for host architecture '${process.arch}'`, {
    arch: process.arch,
  });
}
