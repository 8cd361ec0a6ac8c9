import { expect } from 'chai';
import type { CpuidEntry } from '../hypervisor/types.js';
import { CPUID_FLAG_SIGNIFICANT_INDEX, findCpuid, vcpuCpuid } from './cpuid.js';

const intel: CpuidEntry[] = [
  { function: 0, index: 0, flags: 0, eax: 0x1f, ebx: 0x756e6547, ecx: 0x6c65746e, edx: 0x49656e69 },
  {
    function: 1,
    index: 0,
    flags: 0,
    eax: 0x806f8,
    ebx: 0x00ff0800 | (0x37 << 24),
    ecx: 0x7ffafbff & ~(1 << 31),
    edx: 0x1fabfbff,
  },
  { function: 4, index: 0, flags: 1, eax: 0x121, ebx: 0, ecx: 0, edx: 0 },
  { function: 4, index: 3, flags: 1, eax: 0x163, ebx: 0, ecx: 0, edx: 0 },
  { function: 0xb, index: 0, flags: 1, eax: 1, ebx: 2, ecx: 0x100, edx: 7 },
  { function: 0x4000_0000, index: 0, flags: 0, eax: 0x4000_0001, ebx: 0, ecx: 0, edx: 0 },
  { function: 0x4000_0001, index: 0, flags: 0, eax: 0x01007afb, ebx: 0, ecx: 0, edx: 0 },
];

describe('x86 vCPU CPUID', () => {
  it('numbers vCPUs by APIC id in leaves 1 and 0xB and describes one socket of single-thread cores', () => {
    const e = vcpuCpuid(intel, 3, 4);
    const l1 = findCpuid(e, 1)!;
    expect(l1.ebx >>> 24).to.equal(3);
    expect((l1.ebx >>> 16) & 0xff).to.equal(4);
    expect(l1.ebx & 0xffff).to.equal(0x0800, 'CLFLUSH line size kept');
    expect(l1.ecx >>> 31).to.equal(1, 'hypervisor bit');
    expect((l1.edx >>> 28) & 1).to.equal(1, 'HTT with several logical CPUs');
    const smt = findCpuid(e, 0xb, 0)!,
      core = findCpuid(e, 0xb, 1)!,
      end = findCpuid(e, 0xb, 2)!;
    expect([smt.eax, smt.ebx, (smt.ecx >> 8) & 0xff, smt.edx]).to.deep.equal([0, 1, 1, 3]);
    expect([core.eax, core.ebx, (core.ecx >> 8) & 0xff, core.edx]).to.deep.equal([2, 4, 2, 3]);
    expect((end.ecx >> 8) & 0xff).to.equal(0, 'level type invalid ends the enumeration');
    expect(core.flags & CPUID_FLAG_SIGNIFICANT_INDEX).to.equal(1);
    expect(findCpuid(e, 4, 0)!.eax >>> 26).to.equal(3, 'cores per package - 1');
    expect((findCpuid(e, 4, 3)!.eax >>> 14) & 0xfff).to.equal(3, 'L3 shared by all cores');
  });

  it('gives one vCPU no HTT and 0 core bits', () => {
    const e = vcpuCpuid(intel, 0, 1);
    expect((findCpuid(e, 1)!.edx >>> 28) & 1).to.equal(0);
    expect(findCpuid(e, 0xb, 1)!.eax).to.equal(0);
  });

  it('signs the hypervisor leaf as KVM and passes KVM features through', () => {
    const e = vcpuCpuid(intel, 0, 2);
    const hv = e.filter((x) => x.function === 0x4000_0000);
    expect(hv).to.have.length(1);
    const sig = Buffer.alloc(12);
    sig.writeUInt32LE(hv[0].ebx, 0);
    sig.writeUInt32LE(hv[0].ecx, 4);
    sig.writeUInt32LE(hv[0].edx, 8);
    expect(sig.toString('latin1')).to.equal('KVMKVMKVM\0\0\0');
    expect(hv[0].eax).to.equal(0x4000_0001);
    expect(findCpuid(e, 0x4000_0001)!.eax).to.equal(0x01007afb);
  });
});
