import { z } from 'zod';
import type { VcpuState } from '../../../core/hypervisor/vcpu-state.js';
import { parseVcpuState } from '../../../core/hypervisor/vcpu-state.js';
import type { X86Vcpu } from './extension.js';
import { X86_ARCH } from './extension.js';
import { Msr } from '../cpu/msrs.js';
import { X86_REG_NAMES } from './types.js';

/** Version of the x86 payload layout below. */
export const X86_VCPU_STATE_VERSION = 1;

/**
 * The MSRs a vCPU state carries, in restore order (after the LAPIC: the TSC deadline is ignored unless the LAPIC
 * timer is in deadline mode): those the boot sets, the TSC and what depends on it, and KVM's paravirtual MSRs a
 * Linux guest enables. Without the latter a restored guest runs with kvmclock, steal time, PV EOI and async page
 * faults switched off behind its back: a stale steal-time "preempted" flag, no wake-up for a task waiting on an
 * async page fault. The async-PF vector goes before the enable (KVM refuses the enable without it).
 */
export const SAVED_MSRS: readonly number[] = [
  Msr.IA32_TSC,
  Msr.IA32_TSC_ADJUST,
  Msr.IA32_SYSENTER_CS,
  Msr.IA32_SYSENTER_ESP,
  Msr.IA32_SYSENTER_EIP,
  Msr.IA32_MISC_ENABLE,
  Msr.IA32_MTRR_DEF_TYPE,
  0x277, // IA32_PAT
  Msr.STAR,
  Msr.LSTAR,
  Msr.CSTAR,
  Msr.SYSCALL_MASK,
  Msr.KERNEL_GS_BASE,
  Msr.TSC_AUX,
  Msr.IA32_SPEC_CTRL,
  Msr.AMD64_VIRT_SPEC_CTRL,
  Msr.IA32_TSC_DEADLINE,
  Msr.KVM_SYSTEM_TIME_NEW,
  Msr.KVM_STEAL_TIME,
  Msr.KVM_PV_EOI_EN,
  Msr.KVM_POLL_CONTROL,
  Msr.KVM_ASYNC_PF_INT,
  Msr.KVM_ASYNC_PF_EN,
];

const U64 = z
  .bigint()
  .min(0n)
  .max((1n << 64n) - 1n);
const U32 = z.number().int().min(0).max(0xffff_ffff);
const U16 = z.number().int().min(0).max(0xffff);
const Bit = z.number().int().min(0).max(1);
const AnyBytes = z.custom<Uint8Array>((b) => b instanceof Uint8Array, { message: 'must be bytes (a Uint8Array)' });
const bytes = (n: number) => AnyBytes.refine((b) => b.length === n, { message: `must be exactly ${n} bytes` });

const Segment = z.strictObject({
  base: U64,
  limit: U32,
  selector: U16,
  type: z.number().int().min(0).max(15),
  present: Bit,
  dpl: z.number().int().min(0).max(3),
  db: Bit,
  s: Bit,
  l: Bit,
  g: Bit,
  avl: Bit,
  unusable: Bit,
});
const Table = z.strictObject({ base: U64, limit: U16 });

/** The x86 payload of a VcpuState: every field validated (ranges, exact blob sizes, known names). */
export const X86VcpuPayloadSchema = z.strictObject({
  regs: z.strictObject(
    Object.fromEntries(X86_REG_NAMES.map((n) => [n, U64])) as Record<(typeof X86_REG_NAMES)[number], typeof U64>,
  ),
  sregs: z.strictObject({
    cs: Segment,
    ds: Segment,
    es: Segment,
    fs: Segment,
    gs: Segment,
    ss: Segment,
    tr: Segment,
    ldt: Segment,
    gdt: Table,
    idt: Table,
    cr0: U64,
    cr2: U64,
    cr3: U64,
    cr4: U64,
    cr8: U64,
    efer: U64,
    apicBase: U64,
    interruptBitmap: z.tuple([U64, U64, U64, U64]),
  }),
  fpu: z.strictObject({
    fpr: bytes(128),
    fcw: U16,
    fsw: U16,
    ftwx: z.number().int().min(0).max(0xff),
    lastOpcode: U16,
    lastIp: U64,
    lastDp: U64,
    xmm: bytes(256),
    mxcsr: U32,
  }),
  msrs: z.array(z.strictObject({ index: U32, data: U64 })).max(256),
  mpState: z.enum(['runnable', 'uninitialized', 'init-received', 'halted', 'sipi-received', 'stopped']),
  lapic: bytes(1024),
  /** The CPUID the guest saw (absent in states saved before it was kept); a restore checks it against its own. */
  cpuid: z
    .array(
      z.strictObject({
        function: U32,
        index: U32,
        flags: U32,
        eax: U32,
        ebx: U32,
        ecx: U32,
        edx: U32,
      }),
    )
    .max(256)
    .optional(),
  /** The backend's opaque blobs (KVM: events, xsave, xcrs, debugregs), checked again by the backend. */
  extended: z
    .record(
      z.string().regex(/^[a-z0-9_.]{1,64}$/),
      AnyBytes.refine((b) => b.length <= 1 << 20, { message: 'at most 1 MiB' }),
    )
    .refine((r) => Object.keys(r).length <= 16, {
      message: 'at most 16 blobs',
    }),
});

/** What an x86 vCPU's VcpuState carries. */
export type X86VcpuPayload = z.output<typeof X86VcpuPayloadSchema>;

/** Reads every MSR of `indices` the hypervisor has, skipping (not failing on) those it refuses. */
function readMsrs(vcpu: X86Vcpu, indices: readonly number[]): { index: number; data: bigint }[] {
  const out: { index: number; data: bigint }[] = [];
  let rest = [...indices];
  while (rest.length > 0) {
    const got = vcpu.getMsrs(rest);
    out.push(...got);
    rest = rest.slice(got.length + 1); // the one after those read was refused
  }
  return out;
}

/** Saves an x86 vCPU as the arch-neutral container `{ arch: 'x86_64', version, payload }`. */
export function saveX86VcpuState(vcpu: X86Vcpu): VcpuState {
  const payload: X86VcpuPayload = {
    regs: vcpu.getRegs(),
    sregs: vcpu.getSregs(),
    fpu: vcpu.getFpu(),
    msrs: readMsrs(vcpu, SAVED_MSRS),
    mpState: vcpu.getMpState(),
    lapic: vcpu.getLapic(),
    cpuid: vcpu.getCpuid(),
    extended: vcpu.saveExtendedState(),
  };
  return { arch: X86_ARCH, version: X86_VCPU_STATE_VERSION, payload };
}

/** Validates untrusted input as an x86 VcpuState (HypervisorError 'InvalidState' naming the first problem). */
export function parseX86VcpuState(untrusted: unknown): X86VcpuPayload {
  return parseVcpuState(untrusted, X86_ARCH, X86_VCPU_STATE_VERSION, X86VcpuPayloadSchema);
}

/**
 * Restores a saved x86 vCPU state. Everything is validated before the first call, so a hostile state
 * sets nothing. Order as Firecracker's restore: run state, general then special registers, FPU, LAPIC,
 * MSRs, then the backend's blobs (KVM restores xsave/xcrs/debugregs and the pending events last).
 */
export function restoreX86VcpuState(vcpu: X86Vcpu, untrusted: unknown): void {
  const p = parseX86VcpuState(untrusted);
  vcpu.checkExtendedState(p.extended);
  vcpu.setMpState(p.mpState);
  vcpu.setRegs(p.regs);
  vcpu.setSregs(p.sregs);
  vcpu.setFpu(p.fpu);
  vcpu.setLapic(p.lapic);
  if (p.msrs.length) vcpu.setMsrs(p.msrs);
  vcpu.restoreExtendedState(p.extended);
}
