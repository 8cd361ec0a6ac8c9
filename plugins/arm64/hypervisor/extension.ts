import type { Vcpu, Vm } from '../../../core/hypervisor/hypervisor.js';
import { archExtensionKey, requireExtension } from '../../../core/hypervisor/extension.js';

/** The arch name arm64 extension keys and vCPU state containers carry. */
export const ARM64_ARCH = 'aarch64';

/**
 * The arm64 calls of a Vm the machine makes. The backend creates the GICv3 (and its ITS) with the VM at the
 * layout's addresses (plugins/arm64/layout.ts); the machine initialises it once every vCPU exists.
 */
export interface Arm64Vm {
  /** Initialises the interrupt controller; call after the last vCPU is created and before any runs. */
  finalizeIrqChip(): void;
  /** Whether an ITS (MSI translation for PCI) was created beside the GICv3. */
  readonly hasIts: boolean;
  /** The host's preferred vCPU target (KVM_ARM_PREFERRED_TARGET), for Arm64Vcpu.init. */
  preferredTarget(): number;
}

/** The arm64 calls of a Vcpu: KVM_ARM_VCPU_INIT and registers by one-reg id (plugins/kvm/arm64/abi.ts). */
export interface Arm64Vcpu {
  /**
   * Initialises the vCPU as `target` (Arm64Vm.preferredTarget) with PSCI 0.2+; `powerOff` starts it off
   * (a secondary CPU the guest starts with PSCI CPU_ON).
   */
  init(opts: { target: number; powerOff: boolean }): void;
  getReg(id: bigint): bigint;
  setReg(id: bigint, value: bigint): void;
}

/** Key of the Arm64Vm extension: `vm.extension(ARM64_VM)`. */
export const ARM64_VM = archExtensionKey<Arm64Vm>(ARM64_ARCH, 'aarch64.vm');
/** Key of the Arm64Vcpu extension: `vcpu.extension(ARM64_VCPU)`. */
export const ARM64_VCPU = archExtensionKey<Arm64Vcpu>(ARM64_ARCH, 'aarch64.vcpu');

/** The VM's arm64 extension, or a clear error when the backend has none. */
export function arm64Vm(vm: Vm): Arm64Vm {
  return requireExtension(vm, ARM64_VM, 'the VM');
}

/** The vCPU's arm64 extension, or a clear error when the backend has none. */
export function arm64Vcpu(vcpu: Vcpu): Arm64Vcpu {
  return requireExtension(vcpu, ARM64_VCPU, `vCPU ${vcpu.index}`);
}
