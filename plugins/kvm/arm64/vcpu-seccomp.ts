import type { VcpuThreadLists } from '../../../core/security/vcpu-policy.js';
import { KVM } from '../abi/ioctls.js';
import { KVM_ARM64 } from './abi.js';

/**
 * The names of `generic` (the vCPU threads' system calls, plugins/kvm/vcpu-seccomp.ts) that aarch64's asm-generic
 * ABI lacks: libuv waits with epoll_pwait there (also in the list), so epoll_wait is dropped.
 */
const NOT_ON_ARM64 = new Set(['epoll_wait']);

/**
 * What an arm64 vCPU thread may call: the generic names less NOT_ON_ARM64, and the KVM requests it makes from its
 * thread: KVM_RUN, and for the runner's run-state query (./run-state.ts) KVM_GET_MP_STATE and KVM_GET_ONE_REG (PSTATE,
 * PC). No KVM_SET_ONE_REG: boot registers and restores are set on the main thread before the vCPU thread starts.
 */
export function arm64VcpuThreadLists(generic: readonly string[]): VcpuThreadLists {
  return {
    syscalls: generic.filter((n) => !NOT_ON_ARM64.has(n)),
    ioctls: [KVM.RUN, KVM.GET_MP_STATE, KVM_ARM64.GET_ONE_REG],
  };
}
