import type { Vcpu } from '../../../core/hypervisor/hypervisor.js';
import type { CpuidEntry } from '../../../core/hypervisor/x86.js';
import type { BootPlan } from '../boot/loader.js';
import { vcpuCpuid } from './cpuid.js';
import { bootFpu } from './fpu.js';
import { withVirtualWire } from './lapic.js';
import { bootMsrs } from './msrs.js';
import { longModeBoot, pvhBoot } from './registers.js';

/**
 * Puts one vCPU in its boot state: CPUID (APIC id = index), MSRs, FPU, LAPIC in
 * virtual-wire mode. The BSP (index 0) gets the kernel entry registers; the others
 * wait for INIT/SIPI from the BSP (mp_state uninitialized; the in-kernel LAPIC
 * handles the startup IPIs).
 */
export function configureVcpu(
  vcpu: Vcpu,
  p: { vcpuCount: number; supportedCpuid: readonly CpuidEntry[]; plan: BootPlan },
): void {
  vcpu.setCpuid(vcpuCpuid(p.supportedCpuid, vcpu.index, p.vcpuCount));
  vcpu.setMsrs(bootMsrs());
  vcpu.setFpu(bootFpu());
  vcpu.setLapic(withVirtualWire(vcpu.getLapic()));
  if (vcpu.index !== 0) {
    vcpu.setMpState('uninitialized');
    return;
  }
  const { plan } = p;
  const base = vcpu.getSregs();
  const state =
    plan.protocol === 'bzimage'
      ? longModeBoot(base, {
          entry: plan.entry,
          zeroPage: plan.bootInfo,
          cr3: plan.cr3!,
          gdtLimit: plan.gdtLimit,
          idtLimit: plan.idtLimit,
        })
      : pvhBoot(base, {
          entry: plan.entry,
          startInfo: plan.bootInfo,
          gdtLimit: plan.gdtLimit,
          idtLimit: plan.idtLimit,
        });
  vcpu.setSregs(state.sregs);
  vcpu.setRegs(state.regs);
  vcpu.setMpState('runnable');
}
