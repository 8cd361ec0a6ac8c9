import { expect } from 'chai';
import { SECCOMP_RET, buildSeccompFilter, evaluateFilter } from '../../core/security/seccomp-filter.js';
import { X64_SYSCALLS } from '../../core/security/abi/x64.js';
import { hostHasSyscallLists } from '../../core/security/syscalls.js';
import { vcpuThreadFilter, vcpuThreadPolicy } from '../../core/security/vcpu-policy.js';
import { vcpuThreadLists } from './vcpu-seccomp.js';

describe("kvm: the vCPU threads' seccomp filter on an x86_64 host (core/security vcpu-policy)", () => {
  const X64 = vcpuThreadLists('x64')!;
  const RUN = 0xae80,
    GET_MP_STATE = 0x8004ae98,
    GET_REGS = 0x8090ae81;
  const { allowed: ALLOWED_SYSCALLS, others: SYS, clone: SYS_clone, ioctl: SYS_ioctl } = X64_SYSCALLS;
  const kill = buildSeccompFilter('kill', vcpuThreadPolicy(X64, X64_SYSCALLS), X64_SYSCALLS);
  const log = buildSeccompFilter('log', vcpuThreadPolicy(X64, X64_SYSCALLS), X64_SYSCALLS);
  const decide = (nr: number, args: number[] = [], p = kill) => evaluateFilter(p, { nr, args });

  it('allows its few calls and nothing else in the first 512 numbers (no open, socket, clone, exec)', () => {
    const allowed = new Set(X64.syscalls.map((n) => ALLOWED_SYSCALLS[n]));
    for (let nr = 0; nr < 512; nr++) {
      if (nr === SYS_ioctl) continue;
      expect(decide(nr, [0x3d0f00]), `syscall ${nr}`).to.equal(
        allowed.has(nr) ? SECCOMP_RET.ALLOW : SECCOMP_RET.KILL_PROCESS,
      );
    }
    for (const nr of [SYS.execve, SYS.ptrace, SYS_clone, 257 /* openat */, 41 /* socket */])
      expect(decide(nr, [0x3d0f00])).to.equal(SECCOMP_RET.KILL_PROCESS);
  });

  it("allows brk (glibc's malloc grows the main arena with it from any thread that was handed that arena)", () => {
    expect(decide(ALLOWED_SYSCALLS.brk!)).to.equal(SECCOMP_RET.ALLOW);
    expect(decide(12)).to.equal(SECCOMP_RET.ALLOW); // x86_64's brk
  });

  it('allows exactly the KVM requests it was given: not other KVM requests, not terminals', () => {
    for (const req of [RUN, GET_MP_STATE, GET_REGS]) expect(decide(SYS_ioctl, [5, req])).to.equal(SECCOMP_RET.ALLOW);
    for (const req of [0x4090ae82 /* SET_REGS */, 0xae01 /* CREATE_VM */, 0xc008ae88 /* GET_MSRS */, 0x5401, 0x5412]) {
      expect(decide(SYS_ioctl, [5, req]), `0x${req.toString(16)}`).to.equal(SECCOMP_RET.KILL_PROCESS);
      expect(decide(SYS_ioctl, [5, req], log), `0x${req.toString(16)}`).to.equal(SECCOMP_RET.LOG);
    }
  });

  it('mode false gives no program; true and log differ only in what a refused call does', () => {
    expect(vcpuThreadFilter('false', X64)).to.equal(undefined);
    const t = vcpuThreadFilter('true', X64)!,
      l = vcpuThreadFilter('log', X64)!;
    expect(t.length).to.equal(l.length);
    expect(t.length % 8).to.equal(0);
  });

  it('gives no program where there is no list: none from the kvm plugin for the arch, or another host ABI', () => {
    expect(() => vcpuThreadPolicy({ syscalls: ['no_such_call'], ioctls: [] }, X64_SYSCALLS)).to.throw(
      /not in the process/,
    );
    expect(vcpuThreadLists('ia32')).to.equal(undefined);
    expect(vcpuThreadFilter('true', undefined)).to.equal(undefined);
    expect(hostHasSyscallLists('x64')).to.equal(true);
    expect(hostHasSyscallLists('ia32')).to.equal(false);
  });
});
