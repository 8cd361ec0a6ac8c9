import { expect } from 'chai';
import { ARM64_SYSCALLS as ARM64 } from './abi/arm64.js';
import { X64_SYSCALLS as X64 } from './abi/x64.js';
import { BPF, SECCOMP_RET, SeccompData, buildSeccompFilter, encodeFilter, evaluateFilter } from './seccomp-filter.js';
import { CLONE_THREAD, hostSyscalls } from './syscalls.js';

for (const [ABI, OTHER] of [
  [X64, ARM64],
  [ARM64, X64],
] as const)
  describe(`core/security seccomp filter program (the ${ABI.arch} host ABI)`, () => {
    const kill = buildSeccompFilter('kill', undefined, ABI);
    const log = buildSeccompFilter('log', undefined, ABI);
    const [ALLOWED_SYSCALLS, ENOSYS_SYSCALLS, SYS, SYS_clone, SYS_ioctl] = [
      ABI.allowed,
      ABI.enosys,
      ABI.others,
      ABI.clone,
      ABI.ioctl,
    ];
    const decide = (nr: number, o: { arch?: number; args?: number[] } = {}, p = kill) =>
      evaluateFilter(p, { nr, ...o });

    it('allows every listed system call and nothing else in the first 512 numbers', () => {
      const allowed = new Set(Object.values(ALLOWED_SYSCALLS));
      const enosys = new Set(Object.values(ENOSYS_SYSCALLS));
      for (let nr = 0; nr < 512; nr++) {
        const d = decide(nr, { args: [CLONE_THREAD, 0xae80] });
        if (allowed.has(nr) || nr === SYS_clone || nr === SYS_ioctl)
          expect(d, `syscall ${nr}`).to.equal(SECCOMP_RET.ALLOW);
        else if (enosys.has(nr)) expect(d, `syscall ${nr}`).to.equal(SECCOMP_RET.ERRNO | 38);
        else expect(d, `syscall ${nr}`).to.equal(SECCOMP_RET.KILL_PROCESS);
      }
    });

    it('kills execve and ptrace, and only logs them in log mode', () => {
      for (const nr of [SYS.execve, SYS.ptrace]) {
        expect(decide(nr)).to.equal(SECCOMP_RET.KILL_PROCESS);
        expect(decide(nr, {}, log)).to.equal(SECCOMP_RET.LOG);
      }
    });

    it('lets clone make threads, not processes', () => {
      expect(decide(SYS_clone, { args: [0x3d0f00] })).to.equal(SECCOMP_RET.ALLOW); // glibc pthread_create flags
      expect(decide(SYS_clone, { args: [0x01200011] })).to.equal(SECCOMP_RET.KILL_PROCESS); // fork()
      expect(decide(SYS_clone, { args: [0x4111] })).to.equal(SECCOMP_RET.KILL_PROCESS); // vfork-style spawn
    });

    it('allows ioctl for KVM, terminal/tun, block, vhost and VFIO requests only, never TIOCSTI', () => {
      const ioctl = (req: number, p = kill) => decide(SYS_ioctl, { args: [3, req] }, p);
      for (const req of [
        0xae80 /* KVM_RUN */, 0xc008ae88, 0x4020ae46, 0x5401 /* TCGETS */, 0x5413, 0x5421 /* FIONBIO */,
        0x5451 /* FIOCLEX */, 0x400454ca /* TUNSETIFF */, 0x400454d0, 0x80081272 /* BLKGETSIZE64 */,
        0x4028af11 /* VHOST_SET_VRING_ADDR */, 0xc008af12 /* VHOST_GET_VRING_BASE */,
        0x4004af61 /* VSOCK_SET_RUNNING */, 0x3b6e /* VFIO_DEVICE_SET_IRQS */, 0x3b6f /* VFIO_DEVICE_RESET */,
        0x3b71 /* VFIO_IOMMU_MAP_DMA */,
      ]) {
        expect(ioctl(req), `0x${req.toString(16)}`).to.equal(SECCOMP_RET.ALLOW);
      }
      for (const req of [
        0x5412 /* TIOCSTI */, 0x541c /* TIOCLINUX */, 0x8933 /* SIOCGIFINDEX */, 0x4b3a /* KDSETMODE */, 0,
      ]) {
        expect(ioctl(req), `0x${req.toString(16)}`).to.equal(SECCOMP_RET.KILL_PROCESS);
        expect(ioctl(req, log), `0x${req.toString(16)}`).to.equal(SECCOMP_RET.LOG);
      }
    });

    it('kills other architectures and the x32 ABI whatever the number', () => {
      expect(decide(0, { arch: 0x4000_0003 })).to.equal(SECCOMP_RET.KILL_PROCESS); // i386
      expect(decide(0, { arch: 0x4000_0028 })).to.equal(SECCOMP_RET.KILL_PROCESS); // arm (32-bit)
      expect(decide(ABI.allowed.read!, { arch: OTHER.auditArch })).to.equal(SECCOMP_RET.KILL_PROCESS);
      expect(decide(0x4000_0000 | 1)).to.equal(SECCOMP_RET.KILL_PROCESS);
      expect(decide(ABI.allowed.read!, { arch: ABI.auditArch })).to.equal(SECCOMP_RET.ALLOW);
    });

    it("checks this ABI's AUDIT_ARCH first", () => {
      expect(kill[0]).to.deep.include({ code: BPF.LD_W_ABS, k: SeccompData.arch });
      expect(kill[1]).to.deep.include({ code: BPF.JEQ_K, k: ABI.auditArch });
    });
  });

describe('core/security system call lists by host ABI', () => {
  it('finds the lists by host ABI: x64 and arm64 have them, landlock numbers are shared', () => {
    expect(hostSyscalls('x64')).to.equal(X64);
    expect(X64.auditArch).to.equal(0xc000003e);
    expect(hostSyscalls('arm64')).to.equal(ARM64);
    expect(ARM64.auditArch).to.equal(0xc00000b7);
    expect(hostSyscalls('ia32')).to.equal(undefined);
    expect(hostSyscalls('constructor')).to.equal(undefined);
    expect(() => buildSeccompFilter('kill', undefined, { ...X64, auditArch: 0xc00000b7 })).to.not.throw();
    expect(buildSeccompFilter('kill', undefined, { ...X64, auditArch: 0xc00000b7 })[1]!.k).to.equal(0xc00000b7);
  });

  it('encodes struct sock_filter: code u16, jt u8, jf u8, k u32', () => {
    const b = encodeFilter([{ code: 0x15, jt: 1, jf: 2, k: 0xc000003e }]);
    expect([...b]).to.deep.equal([0x15, 0, 1, 2, 0x3e, 0, 0, 0xc0]);
    expect(buildSeccompFilter('kill', undefined, X64).length).to.be.below(4096);
  });
});
