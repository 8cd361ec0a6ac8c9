/**
 * The VMM's seccomp filter as classic BPF, assembled here by hand: no npm package builds seccomp
 * programs, and libseccomp (a C library) would have to be found on every host and copied into the
 * sandbox's L1 for little gain: the program is a straight list of compares.
 *
 * Layout (struct seccomp_data: nr at 0, arch at 4, args[i] at 16 + 8 i, little-endian):
 *   arch != the host ABI's AUDIT_ARCH  -> kill
 *   nr >= 0x40000000 (the x32 ABI)     -> kill
 *   nr == ioctl: request in policy.ioctl.denied -> the default action; request in policy.ioctl.requests or its
 *                type in policy.ioctl.types -> allow; else the default action
 *   nr in policy.enosys                -> errno ENOSYS
 *   nr in policy.allowed               -> allow
 *   nr == clone (policy.cloneThreads): CLONE_THREAD in flags -> allow, else the default action
 *   anything else                      -> the default action: kill the process, or (mode log) log and allow
 * Two policies use it: the process's (processPolicy, every thread) and the vCPU threads' narrower one
 * (vcpu-policy.ts), which the kvm runner stacks on each vCPU thread.
 */
import { CLONE_THREAD, DENIED_IOCTLS, IOCTL_TYPES, thisHostSyscalls, type HostSyscalls } from './syscalls.js';

/** What one filter allows: system calls by number, ioctl requests by type or number, and the special cases. */
export interface SeccompPolicy {
  /** Allowed outright (name -> number of the host ABI). */
  allowed: Readonly<Record<string, number>>;
  /** ioctl(2): requests allowed by type byte ((request >> 8) & 0xff) or by whole number; `denied` wins over both. */
  ioctl: { types?: readonly number[]; requests?: readonly number[]; denied?: readonly number[] };
  /** Answered with ENOSYS instead of running (callers then fall back to an older call). */
  enosys?: Readonly<Record<string, number>>;
  /** clone(2) allowed with CLONE_THREAD (threads, not processes). */
  cloneThreads?: boolean;
}

/** The policy of the whole VMM process on host ABI `abi` (syscalls.ts): every thread gets it through TSYNC. */
export function processPolicy(abi: HostSyscalls = thisHostSyscalls()): SeccompPolicy {
  return {
    allowed: abi.allowed,
    ioctl: { types: Object.values(IOCTL_TYPES), denied: DENIED_IOCTLS },
    enosys: abi.enosys,
    cloneThreads: true,
  };
}

/** One BPF instruction (struct sock_filter). */
export interface BpfInsn {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

/**
 * The classic-BPF opcodes the filter uses (<linux/bpf_common.h> combinations: load word at absolute offset, jumps on
 * equal / greater-or-equal / bit set with a constant, return a constant, AND with a constant).
 */
export const BPF = {
  LD_W_ABS: 0x20,
  JEQ_K: 0x15,
  JGE_K: 0x35,
  JSET_K: 0x45,
  RET_K: 0x06,
  AND_K: 0x54,
} as const;
/** Seccomp filter return actions (<linux/seccomp.h>); ERRNO is or-ed with the errno to return. */
export const SECCOMP_RET = {
  KILL_PROCESS: 0x8000_0000,
  KILL_THREAD: 0,
  TRAP: 0x0003_0000,
  ERRNO: 0x0005_0000,
  LOG: 0x7ffc_0000,
  ALLOW: 0x7fff_0000,
} as const;
const ENOSYS = 38;
const X32_SYSCALL_BIT = 0x4000_0000;
/** Offsets in struct seccomp_data. */
export const SeccompData = { nr: 0, arch: 4, arg0Low: 16, arg1Low: 24 } as const;

/** What a syscall outside the allow-list does: `kill` the process, or `log` it and let it run. */
export type FilterDefault = 'kill' | 'log';

const insn = (code: number, k: number, jt = 0, jf = 0): BpfInsn => ({ code, jt, jf, k: k >>> 0 });

/** Builds the filter program for `policy` on host ABI `abi` (see the file comment for its rules). */
export function buildSeccompFilter(
  onViolation: FilterDefault,
  policy?: SeccompPolicy,
  abi: HostSyscalls = thisHostSyscalls(),
): BpfInsn[] {
  policy ??= processPolicy(abi);
  const fallback = onViolation === 'kill' ? SECCOMP_RET.KILL_PROCESS : SECCOMP_RET.LOG;
  const p: BpfInsn[] = [
    insn(BPF.LD_W_ABS, SeccompData.arch),
    insn(BPF.JEQ_K, abi.auditArch, 1, 0),
    insn(BPF.RET_K, SECCOMP_RET.KILL_PROCESS),
    insn(BPF.LD_W_ABS, SeccompData.nr),
    insn(BPF.JGE_K, X32_SYSCALL_BIT, 0, 1),
    insn(BPF.RET_K, SECCOMP_RET.KILL_PROCESS),
  ];
  // ioctl first (KVM_RUN is the hottest call). The block reloads the accumulator, so it ends in returns:
  // ld request; each denied request -> fallback; each allowed request -> allow; and 0xff00; each allowed type ->
  // allow; fallback; allow.
  const denied = policy.ioctl.denied ?? [],
    requests = policy.ioctl.requests ?? [],
    types = policy.ioctl.types ?? [];
  const D = denied.length,
    R = requests.length,
    T = types.length;
  if (D + R + T > 250) throw new Error(`seccomp filter: ${D + R + T} ioctl compares exceed a BPF jump's reach`);
  p.push(insn(BPF.JEQ_K, abi.ioctl, 0, D + R + T + 4), insn(BPF.LD_W_ABS, SeccompData.arg1Low));
  // each jump lands on the fallback (after the type compares) or on the final allow
  denied.forEach((req, i) => p.push(insn(BPF.JEQ_K, req, D - i - 1 + R + 1 + T, 0)));
  requests.forEach((req, i) => p.push(insn(BPF.JEQ_K, req, R - i - 1 + 1 + T + 1, 0)));
  p.push(insn(BPF.AND_K, 0xff00));
  types.forEach((t, j) => p.push(insn(BPF.JEQ_K, t << 8, T - j, 0)));
  p.push(insn(BPF.RET_K, fallback), insn(BPF.RET_K, SECCOMP_RET.ALLOW));
  for (const nr of Object.values(policy.allowed)) {
    p.push(insn(BPF.JEQ_K, nr, 0, 1), insn(BPF.RET_K, SECCOMP_RET.ALLOW));
  }
  for (const nr of Object.values(policy.enosys ?? {})) {
    p.push(insn(BPF.JEQ_K, nr, 0, 1), insn(BPF.RET_K, SECCOMP_RET.ERRNO | ENOSYS));
  }
  if (policy.cloneThreads) {
    // clone: only threads. The accumulator is reloaded with the flags, so this block ends in returns.
    p.push(
      insn(BPF.JEQ_K, abi.clone, 0, 4),
      insn(BPF.LD_W_ABS, SeccompData.arg0Low),
      insn(BPF.JSET_K, CLONE_THREAD, 0, 1),
      insn(BPF.RET_K, SECCOMP_RET.ALLOW),
      insn(BPF.RET_K, fallback),
    );
  }
  p.push(insn(BPF.RET_K, fallback));
  if (p.length > 4096) throw new Error(`seccomp filter of ${p.length} instructions exceeds BPF_MAXINSNS`);
  return p;
}

/** The program as struct sock_filter[] bytes (8 bytes each, host order). */
export function encodeFilter(p: readonly BpfInsn[]): Uint8Array {
  const out = new Uint8Array(8 * p.length);
  const dv = new DataView(out.buffer);
  p.forEach((i, n) => {
    dv.setUint16(8 * n, i.code, true);
    dv.setUint8(8 * n + 2, i.jt);
    dv.setUint8(8 * n + 3, i.jf);
    dv.setUint32(8 * n + 4, i.k, true);
  });
  return out;
}

/**
 * Runs the program on one system call, as the kernel would (the subset of classic BPF the builder
 * emits); for tests and for `vmm` to explain a decision. Returns the SECCOMP_RET_* value. Without `arch` the
 * call comes through the ABI the program was built for (its first compare).
 */
export function evaluateFilter(
  p: readonly BpfInsn[],
  call: { nr: number; arch?: number; args?: readonly number[] },
): number {
  const word = (off: number): number => {
    if (off === SeccompData.nr) return call.nr >>> 0;
    if (off === SeccompData.arch) return (call.arch ?? p[1]?.k ?? 0) >>> 0;
    if (off >= 16 && off < 64 && off % 8 === 0) return (call.args?.[(off - 16) / 8] ?? 0) >>> 0;
    throw new Error(`unsupported load at ${off}`);
  };
  let acc = 0;
  for (let pc = 0; pc < p.length; pc++) {
    const i = p[pc];
    switch (i.code) {
      case BPF.LD_W_ABS:
        acc = word(i.k);
        break;
      case BPF.AND_K:
        acc = (acc & i.k) >>> 0;
        break;
      case BPF.JEQ_K:
        pc += acc === i.k ? i.jt : i.jf;
        break;
      case BPF.JGE_K:
        pc += acc >= i.k ? i.jt : i.jf;
        break;
      case BPF.JSET_K:
        pc += (acc & i.k) !== 0 ? i.jt : i.jf;
        break;
      case BPF.RET_K:
        return i.k;
      default:
        throw new Error(`unsupported BPF instruction 0x${i.code.toString(16)}`);
    }
  }
  throw new Error('the program fell off its end');
}
