import type { ArchExtensionKey } from '../../../core/hypervisor/extension.js';
import { ARM64_ARCH, ARM64_VCPU, ARM64_VM } from '../../arm64/hypervisor/extension.js';
import type { KvmArch } from '../arch.js';
import { KvmError } from '../errors.js';
import type { KvmVcpu } from '../vcpu.js';
import type { KvmVm } from '../vm.js';
import { KvmArm64Vcpu } from './vcpu.js';
import { KvmArm64Vm } from './vm.js';

const noState = (what: string) =>
  new KvmError('InvalidArgument', `${what} state save/restore is not implemented on arm64 yet`);

/**
 * KVM on an arm64 host: the Arm64Vm/Arm64Vcpu extensions, the GICv3 + ITS in place of KVM_CREATE_IRQCHIP,
 * SPI-encoded IRQ lines. VM and vCPU state (snapshots, migration) are not implemented on arm64 yet.
 */
export const KVM_ARM64_ARCH: KvmArch = {
  name: ARM64_ARCH,
  vm(vm: KvmVm) {
    const arm = new KvmArm64Vm(vm);
    return {
      extension: <T>(key: ArchExtensionKey<T>): T | undefined =>
        key.name === ARM64_VM.name ? (arm as unknown as T) : undefined,
      createIrqChip: () => arm.createIrqChip(),
      afterIrqChip: () => undefined,
      irqLine: (gsi: number) => arm.irqLine(gsi),
      deferIrqfd: (op: () => void) => arm.deferIrqfd(op),
      close: () => arm.close(),
      saveState: () => {
        throw noState('VM');
      },
      restoreState: () => {
        throw noState('VM');
      },
    };
  },
  vcpu(vcpu: KvmVcpu) {
    const arm = new KvmArm64Vcpu(vcpu);
    return {
      extension: <T>(key: ArchExtensionKey<T>): T | undefined =>
        key.name === ARM64_VCPU.name ? (arm as unknown as T) : undefined,
      saveState: () => {
        throw noState('vCPU');
      },
      restoreState: () => {
        throw noState('vCPU');
      },
    };
  },
};
