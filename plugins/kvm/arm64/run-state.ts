import type { VcpuRunStateReading } from '../run-state.js';
import type { KvmVcpu } from '../vcpu.js';
import { ARM64_REG, PSTATE } from './abi.js';
import { KvmArm64Vcpu } from './vcpu.js';

/** mp_state, PSTATE.I (clear = IRQs taken) and PC of an arm64 vCPU (the runner's vcpuStates), on its own thread. */
export function arm64RunState(vcpu: KvmVcpu): VcpuRunStateReading {
  const regs = new KvmArm64Vcpu(vcpu);
  const pstate = regs.getReg(ARM64_REG.pstate);
  return {
    mpState: vcpu.getMpState(),
    interruptsEnabled: (pstate & BigInt(PSTATE.I)) === 0n,
    pc: regs.getReg(ARM64_REG.pc),
  };
}
