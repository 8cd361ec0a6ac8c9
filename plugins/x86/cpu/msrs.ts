import type { MsrEntry } from '../hypervisor/types.js';

/** Indexes of the MSRs the vCPU setup writes. */
export const Msr = {
  IA32_TSC: 0x10,
  IA32_SYSENTER_CS: 0x174,
  IA32_SYSENTER_ESP: 0x175,
  IA32_SYSENTER_EIP: 0x176,
  IA32_MISC_ENABLE: 0x1a0,
  IA32_MTRR_DEF_TYPE: 0x2ff,
  STAR: 0xc000_0081,
  LSTAR: 0xc000_0082,
  CSTAR: 0xc000_0083,
  SYSCALL_MASK: 0xc000_0084,
  KERNEL_GS_BASE: 0xc000_0102,
  IA32_TSC_ADJUST: 0x3b,
  IA32_SPEC_CTRL: 0x48,
  IA32_TSC_DEADLINE: 0x6e0,
  TSC_AUX: 0xc000_0103,
  AMD64_VIRT_SPEC_CTRL: 0xc001_011f,
  /** KVM's paravirtual MSRs (Documentation/virt/kvm/x86/msr.rst): kvmclock, async PF, steal time, PV EOI. */
  KVM_SYSTEM_TIME_NEW: 0x4b56_4d01,
  KVM_ASYNC_PF_EN: 0x4b56_4d02,
  KVM_STEAL_TIME: 0x4b56_4d03,
  KVM_PV_EOI_EN: 0x4b56_4d04,
  KVM_POLL_CONTROL: 0x4b56_4d05,
  KVM_ASYNC_PF_INT: 0x4b56_4d06,
} as const;

/** IA32_MISC_ENABLE bit 0: fast string operations enabled (what firmware leaves set). */
export const MISC_ENABLE_FAST_STRING = 1n;
/** MTRRs enabled, default memory type write-back. */
export const MTRR_DEF_TYPE_WB_ENABLED = (1n << 11n) | 6n;

/** MSR values every vCPU starts with (the state a firmware would leave). */
export function bootMsrs(): MsrEntry[] {
  return [
    { index: Msr.IA32_SYSENTER_CS, data: 0n },
    { index: Msr.IA32_SYSENTER_ESP, data: 0n },
    { index: Msr.IA32_SYSENTER_EIP, data: 0n },
    { index: Msr.STAR, data: 0n },
    { index: Msr.CSTAR, data: 0n },
    { index: Msr.KERNEL_GS_BASE, data: 0n },
    { index: Msr.SYSCALL_MASK, data: 0n },
    { index: Msr.LSTAR, data: 0n },
    { index: Msr.IA32_TSC, data: 0n },
    { index: Msr.IA32_MISC_ENABLE, data: MISC_ENABLE_FAST_STRING },
    { index: Msr.IA32_MTRR_DEF_TYPE, data: MTRR_DEF_TYPE_WB_ENABLED },
  ];
}
