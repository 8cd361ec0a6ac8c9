import type { ArchExtensionKey } from '../../../core/hypervisor/extension.js';
import { X86_ARCH, X86_VCPU, X86_VM } from '../../x86/hypervisor/extension.js';
import { restoreX86VcpuState, saveX86VcpuState } from '../../x86/hypervisor/state.js';
import type { KvmArch } from '../arch.js';
import type { KvmVcpu } from '../vcpu.js';
import type { KvmVm } from '../vm.js';
import { KvmX86Vcpu } from './vcpu.js';
import { KvmX86Vm } from './vm.js';
import { restoreX86VmState, saveX86VmState } from './vm-state.js';

/** KVM on an x86_64 host: the X86Vm/X86Vcpu extensions, the PIT after the irqchip, the VM and vCPU state. */
export const KVM_X86: KvmArch = {
  name: X86_ARCH,
  vm(vm: KvmVm) {
    const x86 = new KvmX86Vm(vm);
    return {
      extension: <T>(key: ArchExtensionKey<T>): T | undefined =>
        key.name === X86_VM.name ? (x86 as unknown as T) : undefined,
      afterIrqChip: () => x86.createPit(),
      saveState: () => saveX86VmState(vm),
      restoreState: (s: Record<string, Uint8Array>) => restoreX86VmState(vm, s),
    };
  },
  vcpu(vcpu: KvmVcpu) {
    const x86 = new KvmX86Vcpu(vcpu);
    return {
      extension: <T>(key: ArchExtensionKey<T>): T | undefined =>
        key.name === X86_VCPU.name ? (x86 as unknown as T) : undefined,
      saveState: () => saveX86VcpuState(x86),
      restoreState: (state: unknown) => restoreX86VcpuState(x86, state),
    };
  },
};
