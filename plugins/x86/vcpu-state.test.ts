import { expect } from 'chai';
import { takeSnapshot } from '../../core/state/persist.js';
import { VcpuSnapshot } from '../../core/state/vcpu-snapshot.js';
import { hostileStateProblems, roundTripState, withData } from '../../core/testing/state.js';
import { mockX86, mockX86Hypervisor } from './hypervisor/mock.js';
import { x86VcpuStateCheck } from './state.js';
import type { MockVcpu } from '../../core/testing/mock-hypervisor.js';

function vcpuPair() {
  const vm = mockX86Hypervisor().createVm();
  const a = vm.createVcpu(0) as MockVcpu;
  const hb = mockX86Hypervisor();
  const b = hb.createVm().createVcpu(0) as MockVcpu;
  return { a, b, hb, sa: new VcpuSnapshot(a, x86VcpuStateCheck(a)), sb: new VcpuSnapshot(b, x86VcpuStateCheck(b)) };
}

describe('x86 vCPU state through core/state (VcpuSnapshot)', () => {
  it('round-trips registers, segments, FPU bytes and LAPIC through JSON into another vCPU', () => {
    const { a, b, sa, sb } = vcpuPair();
    const x = mockX86(a);
    x.regs.rip = 0xffff_ffff_8100_0000n;
    x.regs.rsp = (1n << 64n) - 16n;
    x.sregs.cr3 = 0x1234_5000n;
    x.lapic[0x20] = 7;
    const { first, second, json } = roundTripState(sa, sb);
    expect(second).to.deep.equal(first);
    expect(first.id).to.equal('vcpu0');
    expect(json).to.include('{"$u64":"18446744071578845184"}');
    expect(mockX86(b).regs.rip).to.equal(0xffff_ffff_8100_0000n);
    expect(mockX86(b).regs.rsp).to.equal((1n << 64n) - 16n);
    expect(mockX86(b).lapic[0x20]).to.equal(7);
  });

  it('refuses a hostile vCPU state before setting anything', () => {
    const { hb, sa, sb } = vcpuPair();
    const good = takeSnapshot(sa);
    type Data = { arch: string; version: number; payload: Record<string, unknown> };
    const payload = (edit: (p: Record<string, unknown>) => Record<string, unknown>) =>
      withData(good, (d) => ({ ...d, payload: edit({ ...(d as unknown as Data).payload }) }));
    const problems = hostileStateProblems(sb, [
      withData(good, (d) => ({ ...d, arch: 'aarch64' })),
      withData(good, (d) => ({ ...d, version: 2 })),
      payload((p) => ({ ...p, regs: { ...(p.regs as object), rip: { $u64: '18446744073709551616' } } })),
      payload((p) => ({ ...p, regs: { ...(p.regs as object), rip: 5 } })),
      payload((p) => ({ ...p, lapic: { $bytes: 'AAAA' } })),
      payload((p) => ({ ...p, mpState: 'flying' })),
      payload((p) => ({ ...p, extra: 1 })),
    ]);
    expect(problems).to.deep.equal([]);
    const setters = hb
      .callsTo('vcpu0')
      .map((c) => c.method)
      .filter((m) => m.startsWith('set') || m === 'restoreExtendedState');
    expect(setters, 'nothing was set on the vCPU').to.deep.equal([]);
  });
});
