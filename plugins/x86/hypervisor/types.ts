/** x86_64 vCPU state as plain data, independent of any hypervisor's struct layout. */

/** The names of X86Regs' fields, in kvm_regs order. */
export const X86_REG_NAMES = [
  'rax',
  'rbx',
  'rcx',
  'rdx',
  'rsi',
  'rdi',
  'rsp',
  'rbp',
  'r8',
  'r9',
  'r10',
  'r11',
  'r12',
  'r13',
  'r14',
  'r15',
  'rip',
  'rflags',
] as const;

/** The general-purpose registers, RIP and RFLAGS. */
export interface X86Regs {
  rax: bigint;
  rbx: bigint;
  rcx: bigint;
  rdx: bigint;
  rsi: bigint;
  rdi: bigint;
  rsp: bigint;
  rbp: bigint;
  r8: bigint;
  r9: bigint;
  r10: bigint;
  r11: bigint;
  r12: bigint;
  r13: bigint;
  r14: bigint;
  r15: bigint;
  rip: bigint;
  rflags: bigint;
}

/** A segment register with its hidden descriptor part. */
export interface X86Segment {
  base: bigint;
  limit: number;
  selector: number;
  type: number;
  present: number;
  dpl: number;
  db: number;
  s: number;
  l: number;
  g: number;
  avl: number;
  unusable: number;
}

/** GDTR / IDTR. */
export interface X86DescriptorTable {
  base: bigint;
  limit: number;
}

/** Segment, control and descriptor-table registers, EFER and the APIC base. */
export interface X86Sregs {
  cs: X86Segment;
  ds: X86Segment;
  es: X86Segment;
  fs: X86Segment;
  gs: X86Segment;
  ss: X86Segment;
  tr: X86Segment;
  ldt: X86Segment;
  gdt: X86DescriptorTable;
  idt: X86DescriptorTable;
  cr0: bigint;
  cr2: bigint;
  cr3: bigint;
  cr4: bigint;
  cr8: bigint;
  efer: bigint;
  apicBase: bigint;
  /** Bitmap of pending external interrupts (4 x u64). */
  interruptBitmap: [bigint, bigint, bigint, bigint];
}

/** The legacy FPU/SSE state (KVM's kvm_fpu). */
export interface X86Fpu {
  fpr: Uint8Array; // 8 x 16 bytes
  fcw: number;
  fsw: number;
  ftwx: number;
  lastOpcode: number;
  lastIp: bigint;
  lastDp: bigint;
  xmm: Uint8Array; // 16 x 16 bytes
  mxcsr: number;
}

/** One CPUID leaf/subleaf result. */
export interface CpuidEntry {
  function: number;
  index: number;
  flags: number;
  eax: number;
  ebx: number;
  ecx: number;
  edx: number;
}

/** One model-specific register and its value. */
export interface MsrEntry {
  index: number;
  data: bigint;
}
