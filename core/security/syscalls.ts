import { ARM64_SYSCALLS } from './abi/arm64.js';
import { X64_SYSCALLS } from './abi/x64.js';

/**
 * The system call numbers of one host ABI that the VMM's seccomp filters use (one file per ABI under ./abi/): the
 * process's allow-list, the few calls the filter treats specially, and names for the calls a kill report may show.
 * The numbers are the host's (the ABI Node runs on), whatever the guest's architecture.
 */
export interface HostSyscalls {
  /** Node's process.arch of this ABI. */
  readonly arch: string;
  /** AUDIT_ARCH_* (linux/audit.h): the filter kills calls made through any other ABI. */
  readonly auditArch: number;
  /** The process's allow-list, hot calls first (the filter is a linear list): name -> number. */
  readonly allowed: Readonly<Record<string, number>>;
  /** ioctl(2): allowed only for the request types of IOCTL_TYPES, never for DENIED_IOCTLS. */
  readonly ioctl: number;
  /** clone(2): allowed only to create threads (flags with CLONE_THREAD). */
  readonly clone: number;
  /**
   * Answered with ENOSYS instead of running: clone3 (its flags sit in memory the filter cannot read; glibc then uses
   * clone) and io_uring (requests in a shared ring, out of the filter's sight).
   */
  readonly enosys: Readonly<Record<string, number>>;
  /** Calls the filter refuses that a report or a test names (execve, ptrace, fork, mount, ...): name -> number. */
  readonly others: Readonly<Record<string, number>>;
}

/** The host ABIs with lists, by Node's process.arch. */
const HOST_ABIS: Readonly<Record<string, HostSyscalls>> = { x64: X64_SYSCALLS, arm64: ARM64_SYSCALLS };

/** The lists of host ABI `arch` (default: this process's), or undefined where there are none (then: no filter). */
export function hostSyscalls(arch: string = process.arch): HostSyscalls | undefined {
  return Object.hasOwn(HOST_ABIS, arch) ? HOST_ABIS[arch] : undefined;
}

/**
 * True when this process runs on a host ABI with lists (x64, arm64); elsewhere no filter is installed and the VMM
 * says so once.
 */
export const hostHasSyscallLists = (arch: string = process.arch): boolean => hostSyscalls(arch) !== undefined;

/** The host ABIs that have lists (for messages). */
export const ABIS_WITH_LISTS: readonly string[] = Object.keys(HOST_ABIS);

/** The lists of this process's host ABI; throws where there are none (callers check hostHasSyscallLists first). */
export function thisHostSyscalls(): HostSyscalls {
  const t = hostSyscalls();
  if (!t) throw new Error(`no system call lists for host architecture '${process.arch}'`);
  return t;
}

/** The ioctl request types (the type byte, (request >> 8) & 0xff) the filter lets through, by purpose. */
export const IOCTL_TYPES: Readonly<Record<string, number>> = {
  /** KVM: every /dev/kvm, VM and vCPU request (_IO*(KVMIO = 0xAE, n)); the kvm plugin owns the numbers. */
  kvm: 0xae,
  /** 'T': terminals (TCGETS, TIOCGWINSZ, FIONBIO, FIOCLEX, ...) and tun/tap (TUNSETIFF, TUNSETOFFLOAD, ...). */
  ttyAndTun: 0x54,
  /** Block devices (BLKGETSIZE64 for raw disks on a block device). */
  block: 0x12,
  /** The kernel's vhost devices (_IO*(VHOST_VIRTIO = 0xAF, n)): virtio-vsock's vhost back end sets its rings up at
   * DRIVER_OK, after the filter is on. */
  vhost: 0xaf,
  /** VFIO (_IO(VFIO_TYPE = ';' = 0x3B, n)): the vfio plugin enables MSI/MSI-X (SET_IRQS) when the guest does, resets
   * and unmaps at unplug, and opens a hot-added device, all after the filter is on. */
  vfio: 0x3b,
};
/** Type 'T' requests that are never needed and do harm: TIOCSTI (fakes terminal input), TIOCLINUX. */
export const DENIED_IOCTLS: readonly number[] = [0x5412, 0x541c];

/** clone(2)'s CLONE_THREAD flag: the only clone the filter allows has it set. */
export const CLONE_THREAD = 0x10000;

/**
 * Landlock's system calls: one number on every host ABI (calls added since Linux 5.1 share their numbers across
 * architectures), so --landlock needs no per-ABI list.
 */
export const LANDLOCK_SYSCALLS = {
  landlock_create_ruleset: 444,
  landlock_add_rule: 445,
  landlock_restrict_self: 446,
} as const;
