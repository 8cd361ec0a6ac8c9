import type { MpState } from '../../core/hypervisor/hypervisor.js';
import { KvmError } from './errors.js';
import type { KvmVcpu } from './vcpu.js';
import { arm64RunState } from './arm64/run-state.js';
import { x86RunState } from './x86/run-state.js';

/** What the runner reports per vCPU: run state, whether it takes interrupts now, its program counter. */
export interface VcpuRunStateReading {
  mpState: MpState;
  interruptsEnabled: boolean;
  pc: bigint;
}

/**
 * Reads a vCPU's run state on the calling thread with this host arch's registers. Light on purpose (no
 * schemas): vCPU worker threads load it.
 */
export function readRunState(vcpu: KvmVcpu): VcpuRunStateReading {
  if (process.arch === 'x64') return x86RunState(vcpu);
  if (process.arch === 'arm64') return arm64RunState(vcpu);
  throw new KvmError('InvalidArgument', `no vCPU run state reader for host architecture '${process.arch}'`);
}
