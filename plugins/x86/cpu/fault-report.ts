import type { Vcpu } from '../../../core/hypervisor/hypervisor.js';
import { x86Vcpu } from '../hypervisor/extension.js';

const hex = (v: bigint | number): string => `0x${v.toString(16)}`;

/**
 * What a vCPU's registers said when it stopped with a triple fault (or another fatal exit), as hex strings for
 * the log: instruction and stack pointers, flags, control registers, EFER, CS and the descriptor tables. Call it
 * only while the vCPU is out of KVM_RUN (the exit handler). Never throws: a failure is reported in the result.
 */
export function vcpuFaultReport(vcpu: Vcpu): Record<string, string> {
  try {
    const x = x86Vcpu(vcpu);
    const r = x.getRegs();
    const s = x.getSregs();
    return {
      rip: hex(r.rip),
      rsp: hex(r.rsp),
      rflags: hex(r.rflags),
      cr0: hex(s.cr0),
      cr2: hex(s.cr2),
      cr3: hex(s.cr3),
      cr4: hex(s.cr4),
      efer: hex(s.efer),
      cs: `${hex(s.cs.selector)} base ${hex(s.cs.base)} l ${s.cs.l} db ${s.cs.db}`,
      gdt: `${hex(s.gdt.base)}/${hex(s.gdt.limit)}`,
      idt: `${hex(s.idt.base)}/${hex(s.idt.limit)}`,
      apicBase: hex(s.apicBase),
    };
  } catch (err) {
    return { error: (err as Error)?.message ?? String(err) };
  }
}
