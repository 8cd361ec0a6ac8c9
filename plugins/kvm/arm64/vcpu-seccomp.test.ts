import { expect } from 'chai';
import { ARM64_SYSCALLS as ARM64 } from '../../../core/security/abi/arm64.js';
import {
  BPF,
  SECCOMP_RET,
  SeccompData,
  buildSeccompFilter,
  evaluateFilter,
} from '../../../core/security/seccomp-filter.js';
import { vcpuThreadPolicy } from '../../../core/security/vcpu-policy.js';
import { X64_SYSCALLS } from '../../../core/security/abi/x64.js';
import { VCPU_THREAD_SYSCALLS, vcpuThreadLists } from '../vcpu-seccomp.js';

describe("kvm: the vCPU threads' seccomp filter on an aarch64 host (core/security vcpu-policy)", () => {
  const LISTS = vcpuThreadLists('arm64')!;
  // the arm64 <linux/kvm.h> requests (generic encoding, as on x86)
  const RUN = 0xae80,
    GET_MP_STATE = 0x8004ae98,
    GET_ONE_REG = 0x4010aeab,
    SET_ONE_REG = 0x4010aeac;
  const kill = buildSeccompFilter('kill', vcpuThreadPolicy(LISTS, ARM64), ARM64);
  const log = buildSeccompFilter('log', vcpuThreadPolicy(LISTS, ARM64), ARM64);
  const decide = (nr: number, args: number[] = [], p = kill) => evaluateFilter(p, { nr, args });

  it('names only calls of the arm64 process list: the generic vCPU list less what asm-generic lacks', () => {
    for (const n of LISTS.syscalls) expect(ARM64.allowed[n], n).to.be.a('number');
    expect(LISTS.syscalls).to.include.members(['epoll_pwait', 'futex', 'write', 'read', 'exit', 'rt_sigreturn']);
    expect(LISTS.syscalls).to.not.include('epoll_wait');
    expect(VCPU_THREAD_SYSCALLS.filter((n) => !LISTS.syscalls.includes(n))).to.deep.equal(['epoll_wait']);
  });

  it('allows its few calls (in asm-generic numbers) and nothing else in the first 512', () => {
    const allowed = new Set(LISTS.syscalls.map((n) => ARM64.allowed[n]));
    expect(allowed.has(22) && allowed.has(98) && allowed.has(64), 'epoll_pwait 22, futex 98, write 64').to.equal(true);
    for (let nr = 0; nr < 512; nr++) {
      if (nr === ARM64.ioctl) continue;
      expect(decide(nr, [0x3d0f00]), `syscall ${nr}`).to.equal(
        allowed.has(nr) ? SECCOMP_RET.ALLOW : SECCOMP_RET.KILL_PROCESS,
      );
    }
    const refused = [ARM64.others.execve!, ARM64.others.ptrace!, ARM64.clone, 56 /* openat */, 198 /* socket */];
    for (const nr of refused) expect(decide(nr, [0x3d0f00])).to.equal(SECCOMP_RET.KILL_PROCESS);
  });

  it('allows KVM_RUN, KVM_GET_MP_STATE and KVM_GET_ONE_REG only: not SET_ONE_REG, other KVM requests, terminals', () => {
    for (const req of [RUN, GET_MP_STATE, GET_ONE_REG])
      expect(decide(ARM64.ioctl, [5, req])).to.equal(SECCOMP_RET.ALLOW);
    for (const req of [SET_ONE_REG, 0x8090ae81 /* GET_REGS, x86 */, 0xae01 /* CREATE_VM */, 0x5401, 0x5412]) {
      expect(decide(ARM64.ioctl, [5, req]), `0x${req.toString(16)}`).to.equal(SECCOMP_RET.KILL_PROCESS);
      expect(decide(ARM64.ioctl, [5, req], log), `0x${req.toString(16)}`).to.equal(SECCOMP_RET.LOG);
    }
  });

  it('checks AUDIT_ARCH_AARCH64 first and kills a call through another ABI', () => {
    expect(kill[0]).to.deep.include({ code: BPF.LD_W_ABS, k: SeccompData.arch });
    expect(kill[1]).to.deep.include({ code: BPF.JEQ_K, k: 0xc00000b7 });
    expect(evaluateFilter(kill, { nr: 64, arch: 0xc00000b7 })).to.equal(SECCOMP_RET.ALLOW);
    expect(evaluateFilter(kill, { nr: 64, arch: X64_SYSCALLS.auditArch })).to.equal(SECCOMP_RET.KILL_PROCESS);
  });
});
