import type { X86Regs, X86Sregs } from '../hypervisor/types.js';
import { X86Layout } from '../layout.js';
import { Selector, bootSegment, bootTss, unusableSegment } from './gdt.js';

/** CR0 bit 0: protected mode. */
export const CR0_PE = 1n << 0n;
/** CR0 bit 4: extension type (hard-wired 1 on modern CPUs). */
export const CR0_ET = 1n << 4n;
/** CR0 bit 31: paging. */
export const CR0_PG = 1n << 31n;
/** CR4 bit 5: physical address extension (required for long mode). */
export const CR4_PAE = 1n << 5n;
/** EFER bit 8: long mode enable. */
export const EFER_LME = 1n << 8n;
/** EFER bit 10: long mode active (set by the CPU once paging is on with LME). */
export const EFER_LMA = 1n << 10n;
const RFLAGS_RESERVED = 2n;
/** Stack for the first instructions: the page between the zero page and the PML4. */
export const BOOT_STACK = 0x8ff0n;

/** General-purpose registers all 0, rflags 2 (its reserved bit 1 set). */
export function zeroRegs(): X86Regs {
  return {
    rax: 0n,
    rbx: 0n,
    rcx: 0n,
    rdx: 0n,
    rsi: 0n,
    rdi: 0n,
    rsp: 0n,
    rbp: 0n,
    r8: 0n,
    r9: 0n,
    r10: 0n,
    r11: 0n,
    r12: 0n,
    r13: 0n,
    r14: 0n,
    r15: 0n,
    rip: 0n,
    rflags: RFLAGS_RESERVED,
  };
}

function withTables(base: X86Sregs, gdtLimit: number, idtLimit: number): X86Sregs {
  return {
    ...base,
    gdt: { base: X86Layout.BOOT_GDT, limit: gdtLimit },
    idt: { base: X86Layout.BOOT_IDT, limit: idtLimit },
    tr: bootTss(),
    ldt: unusableSegment(),
    cr2: 0n,
    cr8: 0n,
  };
}

/**
 * The bzImage 64-bit entry (boot.rst "64-bit Boot Protocol"): long mode with the
 * identity map in CR3, CS = __BOOT_CS, data segments = __BOOT_DS, interrupts off,
 * rsi = the zero page, rip = startup_64.
 */
export function longModeBoot(
  base: X86Sregs,
  p: { entry: bigint; zeroPage: bigint; cr3: bigint; gdtLimit: number; idtLimit: number },
): { regs: X86Regs; sregs: X86Sregs } {
  const data = bootSegment(Selector.DATA);
  const sregs: X86Sregs = {
    ...withTables(base, p.gdtLimit, p.idtLimit),
    cs: bootSegment(Selector.CODE64),
    ds: data,
    es: data,
    fs: data,
    gs: data,
    ss: data,
    cr0: CR0_PE | CR0_ET | CR0_PG,
    cr3: p.cr3,
    cr4: CR4_PAE,
    efer: EFER_LME | EFER_LMA,
  };
  const regs = { ...zeroRegs(), rip: p.entry, rsi: p.zeroPage, rsp: BOOT_STACK, rbp: BOOT_STACK };
  return { regs, sregs };
}

/**
 * The PVH entry (Xen's docs/misc/pvh.pandoc, kernel arch/x86/platform/pvh): 32-bit
 * protected mode, paging off, flat 4 GiB CS (read/execute) and data segments,
 * TR a busy 32-bit TSS, ebx = the hvm_start_info address.
 */
export function pvhBoot(
  base: X86Sregs,
  p: { entry: bigint; startInfo: bigint; gdtLimit: number; idtLimit: number },
): { regs: X86Regs; sregs: X86Sregs } {
  const data = bootSegment(Selector.DATA);
  const sregs: X86Sregs = {
    ...withTables(base, p.gdtLimit, p.idtLimit),
    cs: bootSegment(Selector.CODE32),
    ds: data,
    es: data,
    fs: data,
    gs: data,
    ss: data,
    cr0: CR0_PE | CR0_ET,
    cr3: 0n,
    cr4: 0n,
    efer: 0n,
  };
  const regs = { ...zeroRegs(), rip: p.entry, rbx: p.startInfo };
  return { regs, sregs };
}
