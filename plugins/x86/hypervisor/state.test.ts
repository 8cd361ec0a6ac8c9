import { expect } from 'chai';
import { HypervisorError } from '../../../core/hypervisor/errors.js';
import { MockHypervisor } from '../../../core/testing/mock-hypervisor.js';
import { X86_VCPU, x86Vcpu, x86Vm } from './extension.js';
import { mockX86, mockX86Hypervisor } from './mock.js';
import { SAVED_MSRS, type X86VcpuPayload } from './state.js';

describe('x86 vCPU state (arch-neutral container, x86 payload)', () => {
  function vcpuWithState() {
    const hv = mockX86Hypervisor();
    const v = hv.createVm().createVcpu(0);
    const x = mockX86(v);
    x.regs = { ...x.regs, rip: 0xffff_ffff_8100_0000n, rax: 42n, rflags: 0x246n };
    x.sregs = { ...x.sregs, cr3: 0x9000n, efer: 0xd01n, cs: { ...x.sregs.cs, l: 1, selector: 0x10 } };
    x.fpu = { ...x.fpu, fcw: 0x27f, xmm: Uint8Array.from({ length: 256 }, (_, i) => i) };
    x.msrs.set(SAVED_MSRS[1], 0x10n);
    x.mpState = 'halted';
    x.lapic = Uint8Array.from({ length: 1024 }, (_, i) => i & 0xff);
    x.extended = { 'kvm.xsave.v1': Uint8Array.of(1, 2, 3) };
    return { hv, v, x };
  }

  it('round-trips: save, restore into a fresh vCPU, save again gives the same container', () => {
    const { v } = vcpuWithState();
    const saved = v.saveState();
    expect(saved).to.include({ arch: 'x86_64', version: 1 });
    const fresh = mockX86Hypervisor().createVm().createVcpu(0);
    fresh.restoreState(saved);
    expect(fresh.saveState()).to.deep.equal(saved);
    const p = saved.payload as X86VcpuPayload;
    expect(mockX86(fresh).regs.rip).to.equal(0xffff_ffff_8100_0000n);
    expect(mockX86(fresh).mpState).to.equal('halted');
    expect(p.msrs.find((m) => m.index === SAVED_MSRS[1])?.data).to.equal(0x10n);
  });

  it('refuses hostile or foreign states with one clear line, setting nothing', () => {
    const { v } = vcpuWithState();
    const saved = v.saveState();
    const p = saved.payload as X86VcpuPayload;
    const target = mockX86Hypervisor();
    const t = target.createVm().createVcpu(0);
    const cases: [unknown, RegExp][] = [
      [null, /vCPU state: \(top\)/],
      [{ ...saved, arch: 'aarch64' }, /arch 'aarch64', this vCPU runs 'x86_64'/],
      [{ ...saved, version: 2 }, /version 2 is not supported/],
      [{ ...saved, extra: 1 }, /vCPU state: \(top\)/],
      [{ ...saved, payload: { ...p, regs: { ...p.regs, rip: 1n << 64n } } }, /payload\.regs\.rip/],
      [{ ...saved, payload: { ...p, regs: { ...p.regs, rip: 5 } } }, /payload\.regs\.rip/],
      [{ ...saved, payload: { ...p, lapic: new Uint8Array(10) } }, /payload\.lapic: must be exactly 1024 bytes/],
      [{ ...saved, payload: { ...p, mpState: 'dancing' } }, /payload\.mpState/],
      [
        { ...saved, payload: { ...p, sregs: { ...p.sregs, cs: { ...p.sregs.cs, dpl: 4 } } } },
        /payload\.sregs\.cs\.dpl/,
      ],
      [{ ...saved, payload: { ...p, msrs: Array.from({ length: 300 }, () => p.msrs[0]) } }, /payload\.msrs/],
      [{ ...saved, payload: { ...p, extended: { 'BAD KEY': new Uint8Array(1) } } }, /payload\.extended/],
    ];
    for (const [bad, re] of cases) {
      const before = target.calls.length;
      expect(() => t.restoreState(bad), String(re)).to.throw(HypervisorError, re);
      const sets = target.calls.slice(before).filter((c) => /^set|^restoreExtended/.test(c.method));
      expect(sets, `nothing set for ${String(re)}`).to.deep.equal([]);
    }
  });

  it('reads the MSRs a hypervisor has, skipping one it refuses', () => {
    const { v, x } = vcpuWithState();
    const refused = SAVED_MSRS[3];
    x.getMsrs = (indices: number[]) => {
      const n = indices.indexOf(refused);
      const ok = n < 0 ? indices : indices.slice(0, n);
      return ok.map((index) => ({ index, data: 1n }));
    };
    const p = v.saveState().payload as X86VcpuPayload;
    expect(p.msrs.map((m) => m.index)).to.deep.equal(SAVED_MSRS.filter((i) => i !== refused));
  });

  it('a backend without the x86 extension fails with a clear error naming it', () => {
    const vm = new MockHypervisor().createVm();
    const v = vm.createVcpu(0);
    expect(v.extension(X86_VCPU)).to.equal(undefined);
    expect(() => x86Vcpu(v)).to.throw(HypervisorError, /vCPU 0 \(arch 'mock'\) has no 'x86_64\.vcpu' extension/);
    expect(() => x86Vm(vm)).to.throw(HypervisorError, /the VM \(arch 'mock'\) has no 'x86_64\.vm' extension/);
    // a neutral vCPU still saves and restores its (empty) container
    const st = v.saveState();
    expect(st).to.deep.equal({ arch: 'mock', version: 1, payload: {} });
    v.restoreState(st);
    expect(() => v.restoreState({ arch: 'x86_64', version: 1, payload: {} })).to.throw(HypervisorError, /'x86_64'/);
  });
});
