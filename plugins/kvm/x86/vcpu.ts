import type { MpState } from '../../../core/hypervisor/hypervisor.js';
import type { X86Vcpu } from '../../x86/hypervisor/extension.js';
import type { CpuidEntry, MsrEntry, X86Fpu, X86Regs, X86Sregs } from '../../x86/hypervisor/types.js';
import { alloc } from '../abi/layout.js';
import * as S from '../abi/structs.js';
import { KvmError } from '../errors.js';
import { ioctlBuf } from '../native.js';
import type { KvmVcpu } from '../vcpu.js';
import * as codec from './codec.js';

/** KVM_MAX_CPUID_ENTRIES: the most entries a vCPU's CPUID holds. */
const MAX_CPUID_ENTRIES = 256;

/** Blob keys of saveExtendedState (versioned: a new layout gets a new key). */
export const EXT_STATE_KEYS = {
  events: 'kvm.vcpu_events.v1',
  xsave: 'kvm.xsave.v1',
  xcrs: 'kvm.xcrs.v1',
  debugregs: 'kvm.debugregs.v1',
} as const;

/** Which ioctl restores which blob, in restore order (the pending events last). */
const RESTORE_PLAN = [
  [EXT_STATE_KEYS.xcrs, 'SET_XCRS', S.kvm_xcrs],
  [EXT_STATE_KEYS.xsave, 'SET_XSAVE', S.kvm_xsave],
  [EXT_STATE_KEYS.debugregs, 'SET_DEBUGREGS', S.kvm_debugregs],
  [EXT_STATE_KEYS.events, 'SET_VCPU_EVENTS', S.kvm_vcpu_events],
] as const;

type GetIoctl =
  'GET_REGS' | 'GET_SREGS' | 'GET_FPU' | 'GET_LAPIC' | 'GET_VCPU_EVENTS' | 'GET_XSAVE' | 'GET_XCRS' | 'GET_DEBUGREGS';

/**
 * The x86 extension of a KvmVcpu (X86Vcpu): registers, FPU, CPUID, MSRs, LAPIC and the other x86 blobs
 * through the vCPU's fd. SAFETY: borrows the KvmVcpu's fd; every call checks the vCPU is still open, and
 * each ioctl argument is a fresh buffer sized from the struct layout (abi/structs.ts).
 */
export class KvmX86Vcpu implements X86Vcpu {
  constructor(private readonly vcpu: KvmVcpu) {}

  private get fd(): number {
    this.vcpu.assertOpen();
    return this.vcpu.fd;
  }

  private get<T>(name: GetIoctl, def: { size: number }, decode: (v: DataView, b: Buffer) => T): T {
    const { buf, view } = alloc(def.size);
    ioctlBuf(this.fd, name, buf);
    return decode(view, buf);
  }

  getRegs(): X86Regs {
    return this.get('GET_REGS', S.kvm_regs, codec.decodeRegs);
  }
  setRegs(r: X86Regs): void {
    ioctlBuf(this.fd, 'SET_REGS', codec.encodeRegs(r));
  }
  getSregs(): X86Sregs {
    return this.get('GET_SREGS', S.kvm_sregs, codec.decodeSregs);
  }
  setSregs(s: X86Sregs): void {
    ioctlBuf(this.fd, 'SET_SREGS', codec.encodeSregs(s));
  }
  getFpu(): X86Fpu {
    return this.get('GET_FPU', S.kvm_fpu, codec.decodeFpu);
  }
  setFpu(f: X86Fpu): void {
    ioctlBuf(this.fd, 'SET_FPU', codec.encodeFpu(f));
  }

  setCpuid(entries: CpuidEntry[]): void {
    ioctlBuf(this.fd, 'SET_CPUID2', codec.encodeCpuid2(entries));
  }

  getCpuid(): CpuidEntry[] {
    const buf = codec.encodeCpuid2([], MAX_CPUID_ENTRIES);
    ioctlBuf(this.fd, 'GET_CPUID2', buf); // KVM sets nent to the entries it has
    return codec.decodeCpuid2(new DataView(buf.buffer, buf.byteOffset, buf.byteLength));
  }

  getMsrs(indices: number[]): MsrEntry[] {
    const buf = codec.encodeMsrs(indices.map((index) => ({ index, data: 0n })));
    const n = ioctlBuf(this.fd, 'GET_MSRS', buf); // returns how many were read
    return codec.decodeMsrs(new DataView(buf.buffer, buf.byteOffset, buf.byteLength), n);
  }

  setMsrs(entries: MsrEntry[]): void {
    const n = ioctlBuf(this.fd, 'SET_MSRS', codec.encodeMsrs(entries));
    if (n !== entries.length) {
      const bad = entries[n];
      throw new KvmError(
        'Ioctl',
        `KVM_SET_MSRS set ${n} of ${entries.length} MSRs; MSR 0x${bad.index.toString(16)} was refused`,
        { index: bad.index, set: n },
      );
    }
  }

  getMpState(): MpState {
    return this.vcpu.getMpState();
  }
  setMpState(s: MpState): void {
    this.vcpu.setMpState(s);
  }

  getLapic(): Uint8Array {
    return this.get('GET_LAPIC', S.kvm_lapic_state, (_v, b) => new Uint8Array(b));
  }

  setLapic(regs: Uint8Array): void {
    if (regs.length !== S.kvm_lapic_state.size) {
      throw new KvmError('InvalidArgument', `LAPIC state must be ${S.kvm_lapic_state.size} bytes, got ${regs.length}`);
    }
    ioctlBuf(this.fd, 'SET_LAPIC', Buffer.from(regs));
  }

  saveExtendedState(): Record<string, Uint8Array> {
    const raw = (b: Buffer): Uint8Array => new Uint8Array(b);
    return {
      [EXT_STATE_KEYS.events]: this.get('GET_VCPU_EVENTS', S.kvm_vcpu_events, (_v, b) => raw(b)),
      [EXT_STATE_KEYS.xsave]: this.get('GET_XSAVE', S.kvm_xsave, (_v, b) => raw(b)),
      [EXT_STATE_KEYS.xcrs]: this.get('GET_XCRS', S.kvm_xcrs, (_v, b) => raw(b)),
      [EXT_STATE_KEYS.debugregs]: this.get('GET_DEBUGREGS', S.kvm_debugregs, (_v, b) => raw(b)),
    };
  }

  /** Throws KvmError 'InvalidArgument' for an unknown blob or one of the wrong size. */
  checkExtendedState(s: Record<string, Uint8Array>): void {
    for (const k of Object.keys(s)) {
      if (!RESTORE_PLAN.some(([key]) => key === k))
        throw new KvmError('InvalidArgument', `unknown vCPU state blob '${k}'`, { key: k });
    }
    for (const [key, , def] of RESTORE_PLAN) {
      const blob = s[key];
      if (blob && blob.length !== def.size)
        throw new KvmError('InvalidArgument', `vCPU state '${key}' must be ${def.size} bytes, got ${blob.length}`, {
          key,
        });
    }
  }

  /** Checks every blob's key and size before the first ioctl; restores the pending events last. */
  restoreExtendedState(s: Record<string, Uint8Array>): void {
    this.checkExtendedState(s);
    for (const [key, ioctl] of RESTORE_PLAN) {
      const blob = s[key];
      if (blob) ioctlBuf(this.fd, ioctl, Buffer.from(blob));
    }
  }
}
