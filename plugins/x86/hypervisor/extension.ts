import type { MpState, Vcpu, Vm } from '../../../core/hypervisor/hypervisor.js';
import { archExtensionKey, requireExtension } from '../../../core/hypervisor/extension.js';
import type { CpuidEntry, MsrEntry, X86Fpu, X86Regs, X86Sregs } from './types.js';

/** The arch name x86 extension keys and vCPU state containers carry. */
export const X86_ARCH = 'x86_64';

/**
 * The x86 calls of a Vm that the x86 machine makes. The backend creates the in-kernel irqchip (PIC, IOAPIC,
 * LAPICs) and the PIT itself, with the VM; these are what the machine's layout and CPU setup decide.
 */
export interface X86Vm {
  /** Platform addresses KVM needs below 4 GiB on Intel (TSS: 3 pages); call before creating vCPUs. */
  setTssAddress(addr: bigint): void;
  /** The identity-map page KVM needs below 4 GiB on Intel; call before creating vCPUs. */
  setIdentityMapAddress(addr: bigint): void;
  /** Supported CPUID of the host and hypervisor, for the VMM to adjust and set on each vCPU. */
  supportedCpuid(): CpuidEntry[];
}

/** The x86 calls of a Vcpu: registers, FPU, CPUID, MSRs, run state, local APIC and the rest as blobs. */
export interface X86Vcpu {
  getRegs(): X86Regs;
  setRegs(r: X86Regs): void;
  getSregs(): X86Sregs;
  setSregs(s: X86Sregs): void;
  getFpu(): X86Fpu;
  setFpu(f: X86Fpu): void;
  setCpuid(entries: CpuidEntry[]): void;
  /** The CPUID the vCPU has (as the hypervisor keeps it: bits that follow CR4/XCR0 included). */
  getCpuid(): CpuidEntry[];
  /** Reads the MSRs asked for; stops at the first one the hypervisor refuses (returns those before it). */
  getMsrs(indices: number[]): MsrEntry[];
  setMsrs(entries: MsrEntry[]): void;
  getMpState(): MpState;
  setMpState(s: MpState): void;
  /** The local APIC page (1 KiB) as the hypervisor keeps it. */
  getLapic(): Uint8Array;
  setLapic(regs: Uint8Array): void;
  /** Opaque, versioned blobs for the rest of the vCPU state (events, xsave, xcrs, debugregs). */
  saveExtendedState(): Record<string, Uint8Array>;
  restoreExtendedState(s: Record<string, Uint8Array>): void;
  /** Throws when restoreExtendedState would refuse these blobs; sets nothing. */
  checkExtendedState(s: Record<string, Uint8Array>): void;
}

/** Key of the X86Vm extension: `vm.extension(X86_VM)`. */
export const X86_VM = archExtensionKey<X86Vm>(X86_ARCH, 'x86_64.vm');
/** Key of the X86Vcpu extension: `vcpu.extension(X86_VCPU)`. */
export const X86_VCPU = archExtensionKey<X86Vcpu>(X86_ARCH, 'x86_64.vcpu');

/** The VM's x86 extension, or a clear error when the backend has none. */
export function x86Vm(vm: Vm): X86Vm {
  return requireExtension(vm, X86_VM, 'the VM');
}

/** The vCPU's x86 extension, or a clear error when the backend has none. */
export function x86Vcpu(vcpu: Vcpu): X86Vcpu {
  return requireExtension(vcpu, X86_VCPU, `vCPU ${vcpu.index}`);
}
