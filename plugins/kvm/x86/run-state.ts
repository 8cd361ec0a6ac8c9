import type { KvmVcpu } from '../vcpu.js';
import type { VcpuRunStateReading } from '../run-state.js';
import { KvmX86Vcpu } from './vcpu.js';

/** RFLAGS.IF. */
const RFLAGS_IF = 0x200n;

/** mp_state, RFLAGS.IF and RIP of an x86 vCPU (the runner's vcpuStates), on the vCPU's own thread. */
export function x86RunState(vcpu: KvmVcpu): VcpuRunStateReading {
  const regs = new KvmX86Vcpu(vcpu).getRegs();
  return { mpState: vcpu.getMpState(), interruptsEnabled: (regs.rflags & RFLAGS_IF) !== 0n, pc: regs.rip };
}
