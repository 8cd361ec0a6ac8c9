import { encodeFilter, buildSeccompFilter, type SeccompPolicy } from './seccomp-filter.js';
import type { SeccompMode } from './mode.js';
import { hostSyscalls, thisHostSyscalls, type HostSyscalls } from './syscalls.js';

/**
 * What a vCPU thread may call, as the kvm plugin lists it (plugins/kvm/vcpu-seccomp.ts): system calls by name (each
 * one of the process's list, whose numbers are the host ABI's), and the KVM ioctl requests of the host arch (KVM_RUN
 * and the run-state reads).
 */
export interface VcpuThreadLists {
  syscalls: readonly string[];
  ioctls: readonly number[];
}

/**
 * The filter a vCPU thread stacks on top of the process's (or installs alone, where the process has none: tests,
 * embedders): the lists' system calls, ioctl only for their KVM requests, no clone: a vCPU thread starts nothing.
 */
export function vcpuThreadPolicy(lists: VcpuThreadLists, abi: HostSyscalls = thisHostSyscalls()): SeccompPolicy {
  const allowed: Record<string, number> = {};
  for (const name of lists.syscalls) {
    const nr = abi.allowed[name];
    if (nr === undefined) throw new Error(`vCPU thread system call '${name}' is not in the process's allow-list`);
    allowed[name] = nr;
  }
  return { allowed, ioctl: { requests: lists.ioctls } };
}

/**
 * The encoded vCPU-thread program for `mode`, to hand to each vCPU worker; undefined for 'false', and where there is
 * no list: `lists` undefined (the kvm plugin has none for this arch) or no process lists for this host ABI.
 */
export function vcpuThreadFilter(mode: SeccompMode, lists: VcpuThreadLists | undefined): Uint8Array | undefined {
  const abi = hostSyscalls();
  if (mode === 'false' || lists === undefined || !abi) return undefined;
  return encodeFilter(buildSeccompFilter(mode === 'true' ? 'kill' : 'log', vcpuThreadPolicy(lists, abi), abi));
}
