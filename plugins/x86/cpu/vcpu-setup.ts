import type { Vcpu } from '../../../core/hypervisor/hypervisor.js';
import type { CpuidEntry } from '../hypervisor/types.js';
import type { BootPlan } from '../boot/loader.js';
import { x86Vcpu } from '../hypervisor/extension.js';
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
  const x = x86Vcpu(vcpu);
  x.setCpuid(vcpuCpuid(p.supportedCpuid, vcpu.index, p.vcpuCount));
  x.setMsrs(bootMsrs());
  x.setFpu(bootFpu());
  x.setLapic(withVirtualWire(x.getLapic()));
  if (vcpu.index !== 0) {
    x.setMpState('uninitialized');
    return;
  }
  const { plan } = p;
  const base = x.getSregs();
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
  x.setSregs(state.sregs);
  x.setRegs(state.regs);
  x.setMpState('runnable');
}
