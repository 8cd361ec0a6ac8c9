/**
 * Conversions between the x86 plugin's plain vCPU state (plugins/x86/hypervisor/types.ts)
 * and KVM's x86 structs, through DataViews over ioctl argument buffers.
 */
import { X86_REG_NAMES } from '../../x86/hypervisor/types.js';
import type {
  CpuidEntry,
  MsrEntry,
  X86DescriptorTable,
  X86Fpu,
  X86Regs,
  X86Segment,
  X86Sregs,
} from '../../x86/hypervisor/types.js';
import { alloc, fieldAt, offsetOf } from '../abi/layout.js';
import * as S from '../abi/structs.js';

/** kvm_regs -> X86Regs. */
export function decodeRegs(v: DataView): X86Regs {
  const r = {} as Record<(typeof X86_REG_NAMES)[number], bigint>;
  for (const n of X86_REG_NAMES) r[n] = v.getBigUint64(offsetOf(S.kvm_regs, n), true);
  return r;
}

/** X86Regs -> a kvm_regs buffer. */
export function encodeRegs(r: X86Regs): Buffer {
  const { buf, view } = alloc(S.kvm_regs);
  for (const n of X86_REG_NAMES) view.setBigUint64(offsetOf(S.kvm_regs, n), BigInt.asUintN(64, r[n]), true);
  return buf;
}

const SEG_U8 = ['type', 'present', 'dpl', 'db', 's', 'l', 'g', 'avl', 'unusable'] as const;
const SEGMENTS = ['cs', 'ds', 'es', 'fs', 'gs', 'ss', 'tr', 'ldt'] as const;
const CRS = [
  ['cr0', 'cr0'],
  ['cr2', 'cr2'],
  ['cr3', 'cr3'],
  ['cr4', 'cr4'],
  ['cr8', 'cr8'],
  ['efer', 'efer'],
  ['apic_base', 'apicBase'],
] as const;

function decodeSegment(v: DataView, at: number): X86Segment {
  const o = (f: string): number => at + offsetOf(S.kvm_segment, f);
  const s = {
    base: v.getBigUint64(o('base'), true),
    limit: v.getUint32(o('limit'), true),
    selector: v.getUint16(o('selector'), true),
  } as X86Segment;
  for (const f of SEG_U8) s[f] = v.getUint8(o(f));
  return s;
}

function encodeSegment(v: DataView, at: number, s: X86Segment): void {
  const o = (f: string): number => at + offsetOf(S.kvm_segment, f);
  v.setBigUint64(o('base'), BigInt.asUintN(64, s.base), true);
  v.setUint32(o('limit'), s.limit >>> 0, true);
  v.setUint16(o('selector'), s.selector & 0xffff, true);
  for (const f of SEG_U8) v.setUint8(o(f), s[f] & 0xff);
}

const decodeDtable = (v: DataView, at: number): X86DescriptorTable => ({
  base: v.getBigUint64(at, true),
  limit: v.getUint16(at + offsetOf(S.kvm_dtable, 'limit'), true),
});

/** kvm_sregs -> X86Sregs. */
export function decodeSregs(v: DataView): X86Sregs {
  const s = {} as Record<string, unknown>;
  for (const seg of SEGMENTS) s[seg] = decodeSegment(v, offsetOf(S.kvm_sregs, seg));
  s.gdt = decodeDtable(v, offsetOf(S.kvm_sregs, 'gdt'));
  s.idt = decodeDtable(v, offsetOf(S.kvm_sregs, 'idt'));
  for (const [c, js] of CRS) s[js] = v.getBigUint64(offsetOf(S.kvm_sregs, c), true);
  const ib = offsetOf(S.kvm_sregs, 'interrupt_bitmap');
  s.interruptBitmap = [0, 1, 2, 3].map((i) => v.getBigUint64(ib + 8 * i, true));
  return s as unknown as X86Sregs;
}

/** X86Sregs -> a kvm_sregs buffer. */
export function encodeSregs(s: X86Sregs): Buffer {
  const { buf, view } = alloc(S.kvm_sregs);
  for (const seg of SEGMENTS) encodeSegment(view, offsetOf(S.kvm_sregs, seg), s[seg]);
  for (const t of ['gdt', 'idt'] as const) {
    const at = offsetOf(S.kvm_sregs, t);
    view.setBigUint64(at, BigInt.asUintN(64, s[t].base), true);
    view.setUint16(at + offsetOf(S.kvm_dtable, 'limit'), s[t].limit & 0xffff, true);
  }
  for (const [c, js] of CRS) view.setBigUint64(offsetOf(S.kvm_sregs, c), BigInt.asUintN(64, s[js]), true);
  const ib = offsetOf(S.kvm_sregs, 'interrupt_bitmap');
  s.interruptBitmap.forEach((w, i) => view.setBigUint64(ib + 8 * i, BigInt.asUintN(64, w), true));
  return buf;
}

/** kvm_fpu -> X86Fpu. */
export function decodeFpu(v: DataView): X86Fpu {
  const bytes = (f: string): Uint8Array => {
    const { offset, size } = fieldAt(S.kvm_fpu, f);
    return new Uint8Array(v.buffer.slice(v.byteOffset + offset, v.byteOffset + offset + size));
  };
  const o = (f: string): number => offsetOf(S.kvm_fpu, f);
  return {
    fpr: bytes('fpr'),
    fcw: v.getUint16(o('fcw'), true),
    fsw: v.getUint16(o('fsw'), true),
    ftwx: v.getUint8(o('ftwx')),
    lastOpcode: v.getUint16(o('last_opcode'), true),
    lastIp: v.getBigUint64(o('last_ip'), true),
    lastDp: v.getBigUint64(o('last_dp'), true),
    xmm: bytes('xmm'),
    mxcsr: v.getUint32(o('mxcsr'), true),
  };
}

/** X86Fpu -> a kvm_fpu buffer. */
export function encodeFpu(f: X86Fpu): Buffer {
  const { buf, view } = alloc(S.kvm_fpu);
  const o = (n: string): number => offsetOf(S.kvm_fpu, n);
  const put = (n: string, b: Uint8Array): void => {
    const { offset, size } = fieldAt(S.kvm_fpu, n);
    if (b.length > size) throw new RangeError(`fpu.${n}: ${b.length} bytes, at most ${size}`);
    buf.set(b, offset);
  };
  put('fpr', f.fpr);
  put('xmm', f.xmm);
  view.setUint16(o('fcw'), f.fcw, true);
  view.setUint16(o('fsw'), f.fsw, true);
  view.setUint8(o('ftwx'), f.ftwx);
  view.setUint16(o('last_opcode'), f.lastOpcode, true);
  view.setBigUint64(o('last_ip'), BigInt.asUintN(64, f.lastIp), true);
  view.setBigUint64(o('last_dp'), BigInt.asUintN(64, f.lastDp), true);
  view.setUint32(o('mxcsr'), f.mxcsr >>> 0, true);
  return buf;
}

const CPUID_FIELDS = ['function', 'index', 'flags', 'eax', 'ebx', 'ecx', 'edx'] as const;
const CPUID_HDR = S.kvm_cpuid2.size,
  CPUID_ENTRY = S.kvm_cpuid_entry2.size;

/** A kvm_cpuid2 buffer with room for `capacity` entries (filled from `entries`). */
export function encodeCpuid2(entries: readonly CpuidEntry[], capacity = entries.length): Buffer {
  const { buf, view } = alloc(CPUID_HDR + capacity * CPUID_ENTRY);
  view.setUint32(offsetOf(S.kvm_cpuid2, 'nent'), capacity, true);
  entries.forEach((e, i) => {
    const at = CPUID_HDR + i * CPUID_ENTRY;
    for (const f of CPUID_FIELDS) view.setUint32(at + offsetOf(S.kvm_cpuid_entry2, f), e[f] >>> 0, true);
  });
  return buf;
}

/** kvm_cpuid2 (its `nent` entries) -> CpuidEntry[]. */
export function decodeCpuid2(v: DataView): CpuidEntry[] {
  const n = v.getUint32(offsetOf(S.kvm_cpuid2, 'nent'), true);
  const max = Math.floor((v.byteLength - CPUID_HDR) / CPUID_ENTRY);
  const out: CpuidEntry[] = [];
  for (let i = 0; i < Math.min(n, max); i++) {
    const at = CPUID_HDR + i * CPUID_ENTRY;
    const e = {} as Record<(typeof CPUID_FIELDS)[number], number>;
    for (const f of CPUID_FIELDS) e[f] = v.getUint32(at + offsetOf(S.kvm_cpuid_entry2, f), true);
    out.push(e);
  }
  return out;
}

const MSR_HDR = S.kvm_msrs.size,
  MSR_ENTRY = S.kvm_msr_entry.size;

/** MsrEntry[] -> a kvm_msrs buffer. */
export function encodeMsrs(entries: readonly MsrEntry[]): Buffer {
  const { buf, view } = alloc(MSR_HDR + entries.length * MSR_ENTRY);
  view.setUint32(offsetOf(S.kvm_msrs, 'nmsrs'), entries.length, true);
  entries.forEach((e, i) => {
    const at = MSR_HDR + i * MSR_ENTRY;
    view.setUint32(at + offsetOf(S.kvm_msr_entry, 'index'), e.index >>> 0, true);
    view.setBigUint64(at + offsetOf(S.kvm_msr_entry, 'data'), BigInt.asUintN(64, e.data), true);
  });
  return buf;
}

/** The first `count` entries of a kvm_msrs buffer. */
export function decodeMsrs(v: DataView, count: number): MsrEntry[] {
  const out: MsrEntry[] = [];
  for (let i = 0; i < count; i++) {
    const at = MSR_HDR + i * MSR_ENTRY;
    out.push({
      index: v.getUint32(at + offsetOf(S.kvm_msr_entry, 'index'), true),
      data: v.getBigUint64(at + offsetOf(S.kvm_msr_entry, 'data'), true),
    });
  }
  return out;
}
