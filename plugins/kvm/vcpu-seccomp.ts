import type { VcpuThreadLists } from '../../core/security/vcpu-policy.js';
import { KVM } from './abi/ioctls.js';
import { arm64VcpuThreadLists } from './arm64/vcpu-seccomp.js';

/**
 * The system calls a vCPU thread may make (core/security/vcpu-policy.ts maps the names to the host ABI's numbers),
 * measured with `strace -f -ff` over the kvm tier's worker-runner and
 * fast-path tests: from the first KVM_RUN on, a vCPU thread only calls ioctl (KVM_RUN and the run-state reads), write
 * (eventfds, the signal pipe), futex (Atomics.wait/notify), mmap/munmap/mprotect/madvise (its isolate's heap and code),
 * epoll/read/close (its event loop, when the worker ends), signal return and masking, and exit. The rest are
 * what glibc and V8 may call on such a thread on another host: clock reads (vDSO fallback), yields and sleeps, an
 * abort's getpid/gettid/tgkill, exit_group after a fatal error, and brk: glibc's malloc on a thread that was handed
 * the main arena (its arenas are shared once there are more threads than it makes arenas) grows the heap with brk;
 * without it the filter killed the whole VMM about once in five kvm-tier runs (a migration test, SIGSYS on brk).
 */
export const VCPU_THREAD_SYSCALLS: readonly string[] = [
  'write',
  'futex',
  'read',
  'clock_gettime',
  'rt_sigreturn',
  'rt_sigprocmask',
  'madvise',
  'mmap',
  'munmap',
  'mprotect',
  'mremap',
  'brk',
  'epoll_wait',
  'epoll_pwait',
  'epoll_pwait2',
  'epoll_ctl',
  'close',
  'sched_yield',
  'nanosleep',
  'clock_nanosleep',
  'gettimeofday',
  'getpid',
  'gettid',
  'tgkill',
  'restart_syscall',
  'exit',
  'exit_group',
];

/**
 * What a vCPU thread may call on this host arch (its seccomp filter: VCPU_THREAD_SYSCALLS, and the KVM requests
 * KVM_RUN plus what ./run-state.ts reads: mp_state; x86: the general registers; arm64: ./arm64/vcpu-seccomp.ts,
 * PSTATE and PC through KVM_GET_ONE_REG). Undefined for an arch without a list: its vCPU threads then run without
 * their own filter.
 */
export function vcpuThreadLists(arch: string = process.arch): VcpuThreadLists | undefined {
  if (arch === 'x64') return { syscalls: VCPU_THREAD_SYSCALLS, ioctls: [KVM.RUN, KVM.GET_MP_STATE, KVM.GET_REGS] };
  if (arch === 'arm64') return arm64VcpuThreadLists(VCPU_THREAD_SYSCALLS);
  return undefined;
}
