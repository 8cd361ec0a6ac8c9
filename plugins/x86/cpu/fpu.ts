import type { X86Fpu } from '../hypervisor/types.js';

/** The FPU/SSE state after FNINIT and with SSE exceptions masked: fcw 0x37f, mxcsr 0x1f80. */
export function bootFpu(): X86Fpu {
  return {
    fpr: new Uint8Array(128),
    fcw: 0x37f,
    fsw: 0,
    ftwx: 0,
    lastOpcode: 0,
    lastIp: 0n,
    lastDp: 0n,
    xmm: new Uint8Array(256),
    mxcsr: 0x1f80,
  };
}
