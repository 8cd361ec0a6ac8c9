/**
 * Test doubles and helpers for KVM tests and for plugin authors who want tiny
 * hand-made guests: a little x86-64 assembler for the handful of instructions such
 * guests need, and a long-mode setup (GDT, 4-level identity page tables, CR0/CR4/
 * EFER, 64-bit CS) written straight into guest memory and vCPU registers.
 * The production boot path lives in plugins/x86; this one is deliberately small.
 */
import { x86Vcpu } from '../x86/hypervisor/extension.js';
import { GuestAddress } from '../../core/address.js';
import type { Vcpu } from '../../core/hypervisor/hypervisor.js';
import type { X86Segment } from '../x86/hypervisor/types.js';
import type { GuestMemory } from '../../core/memory/guest-memory.js';

/** A minimal x86-64 assembler: enough for PIO/MMIO/spin test guests. */
export class Asm {
  private readonly out: number[] = [];
  private readonly labels = new Map<string, number>();
  private readonly fixups: { at: number; label: string }[] = [];

  private emit(...b: number[]): this {
    this.out.push(...b);
    return this;
  }
  private le(v: bigint, n: number): number[] {
    return Array.from({ length: n }, (_, i) => Number((v >> BigInt(8 * i)) & 0xffn));
  }

  movEax(v: number): this {
    return this.emit(0xb8, ...this.le(BigInt(v >>> 0), 4));
  }
  movEdx(v: number): this {
    return this.emit(0xba, ...this.le(BigInt(v >>> 0), 4));
  }
  movEcx(v: number): this {
    return this.emit(0xb9, ...this.le(BigInt(v >>> 0), 4));
  }
  movRbx(v: bigint): this {
    return this.emit(0x48, 0xbb, ...this.le(v, 8));
  }
  outDxAl(): this {
    return this.emit(0xee);
  }
  outDxEax(): this {
    return this.emit(0xef);
  }
  outDxAx(): this {
    return this.emit(0x66, 0xef);
  }
  inAlDx(): this {
    return this.emit(0xec);
  }
  inEaxDx(): this {
    return this.emit(0xed);
  }
  /** mov [rbx], eax */
  storeEax(): this {
    return this.emit(0x89, 0x03);
  }
  /** mov eax, [rbx] */
  loadEax(): this {
    return this.emit(0x8b, 0x03);
  }
  /** inc qword [rbx] */
  incQword(): this {
    return this.emit(0x48, 0xff, 0x03);
  }
  decEcx(): this {
    return this.emit(0xff, 0xc9);
  }
  hlt(): this {
    return this.emit(0xf4);
  }
  pause(): this {
    return this.emit(0xf3, 0x90);
  }
  label(name: string): this {
    this.labels.set(name, this.out.length);
    return this;
  }
  jmp(label: string): this {
    this.fixups.push({ at: this.out.length + 1, label });
    return this.emit(0xeb, 0);
  }
  jnz(label: string): this {
    this.fixups.push({ at: this.out.length + 1, label });
    return this.emit(0x75, 0);
  }

  bytes(): Uint8Array {
    const b = Uint8Array.from(this.out);
    for (const f of this.fixups) {
      const target = this.labels.get(f.label);
      if (target === undefined) throw new Error(`undefined label ${f.label}`);
      const rel = target - (f.at + 1);
      if (rel < -128 || rel > 127) throw new Error(`jump to ${f.label} too far for rel8`);
      b[f.at] = rel & 0xff;
    }
    return b;
  }
}

/** Where setupLongMode puts its tables (the guest needs the first 6 pages + 1 GiB of identity map). */
export const LONG_MODE_LAYOUT = {
  gdt: 0x1000n,
  pml4: 0x2000n,
  pdpt: 0x3000n,
  pd: 0x4000n,
  tss: 0x5000n,
  code: 0x8000n,
  stack: 0x7000n,
} as const;

const seg = (selector: number, type: number, dpl: number, l: number, db: number): X86Segment => ({
  base: 0n,
  limit: 0xffffffff,
  selector,
  type,
  present: 1,
  dpl,
  db,
  s: 1,
  l,
  g: 1,
  avl: 0,
  unusable: 0,
});

/** Writes a GDT and 4-level page tables identity-mapping the first 1 GiB with 2 MiB pages (user-accessible). */
export function writeLongModeTables(mem: GuestMemory): void {
  const L = LONG_MODE_LAYOUT;
  const gdt = [
    0n,
    0x00af9b000000ffffn, // 0x08 code64 DPL0
    0x00cf93000000ffffn, // 0x10 data DPL0
    0x00affb000000ffffn, // 0x18 code64 DPL3
    0x00cff3000000ffffn, // 0x20 data DPL3
    0x0000890000000067n | ((L.tss & 0xffffffn) << 16n), // 0x28 TSS (low half)
    L.tss >> 32n, // TSS (high half)
  ];
  gdt.forEach((d, i) => mem.writeU64(GuestAddress.of(L.gdt + BigInt(i * 8)), d));
  mem.writeU64(GuestAddress.of(L.pml4), L.pdpt | 7n);
  mem.writeU64(GuestAddress.of(L.pdpt), L.pd | 7n);
  for (let i = 0n; i < 512n; i++) mem.writeU64(GuestAddress.of(L.pd + i * 8n), (i << 21n) | 0x87n);
}

/** Where and how setupLongMode starts a vCPU in 64-bit mode. */
export interface LongModeOptions {
  /** Guest-physical (= virtual) address of the first instruction. */
  entry: bigint;
  /** 0: kernel mode (emulated, ~1 µs/instruction under PVM); 3: user mode with IOPL 3 (native under PVM). */
  cpl?: 0 | 3;
  stack?: bigint;
  /** Initial general registers (e.g. { rax: vcpuIndex }). */
  regs?: Partial<Record<'rax' | 'rbx' | 'rcx' | 'rdx' | 'rsi' | 'rdi', bigint>>;
}

/** Puts a vCPU straight into 64-bit mode (tables must be written with writeLongModeTables). */
export function setupLongMode(vcpu: Vcpu, opts: LongModeOptions): void {
  const L = LONG_MODE_LAYOUT;
  const cpl = opts.cpl ?? 0;
  const x = x86Vcpu(vcpu);
  const s = x.getSregs();
  const code = cpl === 3 ? seg(0x1b, 0xb, 3, 1, 0) : seg(0x08, 0xb, 0, 1, 0);
  const data = cpl === 3 ? seg(0x23, 0x3, 3, 0, 1) : seg(0x10, 0x3, 0, 0, 1);
  s.cs = code;
  s.ds = s.es = s.fs = s.gs = s.ss = data;
  s.tr = {
    base: L.tss,
    limit: 0x67,
    selector: 0x28,
    type: 0xb,
    present: 1,
    dpl: 0,
    db: 0,
    s: 0,
    l: 0,
    g: 0,
    avl: 0,
    unusable: 0,
  };
  s.ldt = {
    base: 0n,
    limit: 0,
    selector: 0,
    type: 2,
    present: 0,
    dpl: 0,
    db: 0,
    s: 0,
    l: 0,
    g: 0,
    avl: 0,
    unusable: 1,
  };
  s.gdt = { base: L.gdt, limit: 7 * 8 - 1 };
  s.idt = { base: 0n, limit: 0 };
  s.cr0 = 0x80050033n; // PG | AM | WP | NE | ET | MP | PE
  s.cr3 = L.pml4;
  s.cr4 = 0x620n; // OSXMMEXCPT | OSFXSR | PAE
  s.efer = 0x500n; // LMA | LME
  x.setSregs(s);
  const r = x.getRegs();
  r.rip = opts.entry;
  r.rsp = opts.stack ?? L.stack;
  r.rflags = cpl === 3 ? 0x3002n : 0x2n; // IOPL 3 lets user mode do port I/O
  for (const [k, v] of Object.entries(opts.regs ?? {})) r[k as keyof typeof r] = v as bigint;
  x.setRegs(r);
}
