import { expect } from 'chai';
import type { CpuidEntry } from '../../x86/hypervisor/types.js';
import { ECX_TSC_DEADLINE, withInKernelApicFeatures } from './apic-cpuid.js';

const supported: CpuidEntry[] = [
  { function: 0, index: 0, flags: 0, eax: 0xd, ebx: 0x68747541, ecx: 0x444d4163, edx: 0x69746e65 },
  { function: 1, index: 0, flags: 0, eax: 0x60fb1, ebx: 0x800, ecx: 0xfed83203, edx: 0x178bfbff },
  { function: 6, index: 0, flags: 0, eax: 4, ebx: 0, ecx: 0, edx: 0 },
];

describe('kvm x86 CPUID: in-kernel LAPIC features', () => {
  it('offers the TSC-deadline timer (CPUID.1:ECX[24]) with the in-kernel LAPIC and KVM_CAP_TSC_DEADLINE_TIMER', () => {
    const out = withInKernelApicFeatures(supported, { irqchip: true, tscDeadline: true });
    const l1 = out.find((e) => e.function === 1)!;
    expect(l1.ecx >>> 0).to.equal((0xfed83203 | ECX_TSC_DEADLINE) >>> 0);
    expect([l1.eax, l1.ebx, l1.edx]).to.deep.equal([0x60fb1, 0x800, 0x178bfbff], 'the rest of leaf 1 kept');
    expect(out.filter((e) => e.function !== 1)).to.deep.equal(supported.filter((e) => e.function !== 1));
    expect(supported[1].ecx & ECX_TSC_DEADLINE, 'the input list untouched').to.equal(0);
  });

  it('does not offer it without the in-kernel LAPIC or without the capability', () => {
    for (const apic of [
      { irqchip: false, tscDeadline: true },
      { irqchip: true, tscDeadline: false },
    ]) {
      const l1 = withInKernelApicFeatures(supported, apic).find((e) => e.function === 1)!;
      expect(l1.ecx & ECX_TSC_DEADLINE, JSON.stringify(apic)).to.equal(0);
    }
  });
});
