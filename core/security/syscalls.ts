/** The host ABI these numbers are for (Node's process.arch). */
export const SYSCALLS_ARCH = 'x64';
/**
 * True when this process runs on the host ABI the lists are for; elsewhere (an arm64 host) no filter is installed
 * (the numbers would be wrong) and the VMM says so once.
 */
export const hostHasSyscallLists = (arch: string = process.arch): boolean => arch === SYSCALLS_ARCH;

/**
 * The host's system call numbers for Node's process.arch 'x64' (asm/unistd_64.h) of the VMM's seccomp allow-list, and
 * the few the filter treats specially. The list was measured: `strace -f -c` over the kvm tier and the unit tests of
 * the devices, disk formats, consoles, network back ends and event loop (every path a running VMM takes), then families
 * completed (e.g. every stat and poll variant Node or glibc may pick); `vmm run --seccomp log` plus the kernel log
 * finds anything still missing.
 *
 * Left out on purpose (a running VMM has no use for them): execve/execveat, fork/vfork and clone
 * without CLONE_THREAD (no new processes), ptrace, process_vm_readv/writev, mount and namespace
 * calls, module loading, bpf, perf_event_open, keyctl, kexec, reboot, set*id, chroot, io_uring
 * (its requests would bypass this filter; libuv falls back to epoll when it gets ENOSYS).
 */
export const ALLOWED_SYSCALLS: Readonly<Record<string, number>> = {
  // hot first: the filter is a linear list, and these run on every exit / loop turn (ioctl: IOCTL_TYPES below)
  read: 0,
  write: 1,
  futex: 202,
  epoll_wait: 232,
  epoll_pwait: 281,
  epoll_pwait2: 441,
  epoll_ctl: 233,
  pread64: 17,
  pwrite64: 18,
  preadv: 295,
  pwritev: 296,
  preadv2: 327,
  pwritev2: 328,
  readv: 19,
  writev: 20,
  clock_gettime: 228,
  gettid: 186,
  tgkill: 234,
  rt_sigreturn: 15,
  rt_sigprocmask: 14,
  madvise: 28,
  mmap: 9,
  munmap: 11,
  mprotect: 10,
  mremap: 25,
  msync: 26,
  mincore: 27,
  brk: 12,
  epoll_create1: 291,
  openat: 257,
  open: 2,
  close: 3,
  close_range: 436,
  fstat: 5,
  newfstatat: 262,
  statx: 332,
  lseek: 8,
  access: 21,
  faccessat: 269,
  faccessat2: 439,
  readlink: 89,
  readlinkat: 267,
  getdents64: 217,
  fstatfs: 138,
  statfs: 137,
  getcwd: 79,
  fcntl: 72,
  dup: 32,
  dup2: 33,
  dup3: 292,
  pipe: 22,
  pipe2: 293,
  eventfd2: 290,
  eventfd: 284,
  memfd_create: 319,
  ftruncate: 77,
  fallocate: 285,
  fsync: 74,
  fdatasync: 75,
  flock: 73,
  copy_file_range: 326,
  sendfile: 40,
  unlink: 87,
  unlinkat: 263,
  rename: 82,
  renameat: 264,
  renameat2: 316,
  mkdir: 83,
  mkdirat: 258,
  rmdir: 84,
  fchmod: 91,
  chmod: 90,
  fchmodat: 268,
  umask: 95,
  utimensat: 280,
  socket: 41,
  socketpair: 53,
  bind: 49,
  listen: 50,
  accept: 43,
  accept4: 288,
  connect: 42,
  getsockname: 51,
  getpeername: 52,
  getsockopt: 55,
  setsockopt: 54,
  shutdown: 48,
  sendto: 44,
  recvfrom: 45,
  sendmsg: 46,
  recvmsg: 47,
  sendmmsg: 307,
  recvmmsg: 299,
  poll: 7,
  ppoll: 271,
  select: 23,
  pselect6: 270,
  nanosleep: 35,
  clock_nanosleep: 230,
  clock_getres: 229,
  gettimeofday: 96,
  time: 201,
  sched_yield: 24,
  getpid: 39,
  getppid: 110,
  getuid: 102,
  geteuid: 107,
  getgid: 104,
  getegid: 108,
  getgroups: 115,
  getresuid: 118,
  getresgid: 120,
  getrusage: 98,
  getrlimit: 97,
  prlimit64: 302,
  sysinfo: 99,
  uname: 63,
  times: 100,
  getpriority: 140,
  rt_sigaction: 13,
  rt_sigpending: 127,
  rt_sigtimedwait: 128,
  rt_sigsuspend: 130,
  sigaltstack: 131,
  signalfd4: 289,
  kill: 62,
  tkill: 200,
  set_robust_list: 273,
  get_robust_list: 274,
  set_tid_address: 218,
  rseq: 334,
  arch_prctl: 158,
  prctl: 157,
  sched_getaffinity: 204,
  sched_setaffinity: 203,
  sched_getparam: 143,
  sched_getscheduler: 145,
  get_mempolicy: 239,
  set_mempolicy: 238,
  mbind: 237,
  membarrier: 324,
  pkey_alloc: 330,
  pkey_free: 331,
  pkey_mprotect: 329,
  getrandom: 318,
  exit: 60,
  exit_group: 231,
  restart_syscall: 219,
  wait4: 61,
  capget: 125,
  timerfd_create: 283,
  timerfd_settime: 286,
  timerfd_gettime: 287,
  inotify_init1: 294,
  inotify_add_watch: 254,
  inotify_rm_watch: 255,
  // each vCPU worker stacks its own narrower filter after the process filter is on (vcpu-policy.ts); a filter can
  // only take rights away, so this gives none back
  seccomp: 317,
  // not seen in the measurements but in the same families (glibc or libuv may pick them on another host)
  stat: 4,
  lstat: 6,
  fadvise64: 221,
  truncate: 76,
  chdir: 80,
  fchdir: 81,
  getcpu: 309,
  sched_get_priority_max: 146,
  sched_get_priority_min: 147,
  setpriority: 141,
  sync_file_range: 277,
  fchown: 93,
  fchownat: 260,
  epoll_create: 213,
  waitid: 247,
  getpgrp: 111,
  getpgid: 121,
  getsid: 124,
};

/** ioctl(2): allowed for these request types only ((request >> 8) & 0xff), but never for DENIED_IOCTLS. */
export const SYS_ioctl = 16;
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

/** clone(2): allowed only to create threads (flags with CLONE_THREAD). */
export const SYS_clone = 56;
/** clone(2)'s CLONE_THREAD flag: the only clone the filter allows has it set. */
export const CLONE_THREAD = 0x10000;
/** Answered with ENOSYS instead of running: clone3 (its flags sit in memory the filter cannot read; glibc then
 * uses clone) and io_uring (requests in a shared ring, out of the filter's sight). */
export const ENOSYS_SYSCALLS: Readonly<Record<string, number>> = {
  clone3: 435,
  io_uring_setup: 425,
  io_uring_enter: 426,
  io_uring_register: 427,
};
/** Numbers the tests and the plugin that probes the filter use. */
export const SYS = {
  execve: 59,
  ptrace: 101,
  seccomp: 317,
  landlock_create_ruleset: 444,
  landlock_add_rule: 445,
  landlock_restrict_self: 446,
} as const;
