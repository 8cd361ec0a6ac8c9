import type { Vcpu, VcpuExit } from '../../core/hypervisor/hypervisor.js';
import type { CpuidEntry, MpState, MsrEntry, X86Fpu, X86Regs, X86Sregs } from '../../core/hypervisor/x86.js';
import {
  c,
  check,
  errno,
  ERRNO,
  MAP_SHARED,
  PROT_READ,
  PROT_WRITE,
  SYS_gettid,
  viewOf,
} from '../../core/native/libc.js';
import { alloc } from './abi/layout.js';
import * as S from './abi/structs.js';
import * as codec from './abi/codec.js';
import { EXIT } from './abi/ioctls.js';
import { KvmError } from './errors.js';
import { ioctlBuf, ioctlError, ioctlNum } from './native.js';
import { RunArea } from './run-area.js';
import { ensureKickHandler, kickHandlerInstalled, signalThread } from './kick.js';
import { KVM } from './abi/ioctls.js';

/** Blob keys of saveExtendedState (versioned: a new layout gets a new key). */
export const EXT_STATE_KEYS = {
  events: 'kvm.vcpu_events.v1',
  xsave: 'kvm.xsave.v1',
  xcrs: 'kvm.xcrs.v1',
  debugregs: 'kvm.debugregs.v1',
} as const;

/**
 * One KVM vCPU: a vcpu fd plus its mmapped kvm_run page.
 * SAFETY: when `ownsFd` the fd is closed by close(); the kvm_run mapping is always
 * owned by this object and unmapped by close() — RunArea views die with it.
 * A KvmVcpu can be attached to a vcpu fd in a worker thread (fds are process-wide);
 * that copy maps its own view of the same kvm_run page and must not close the fd.
 */
export class KvmVcpu implements Vcpu {
  readonly run_: RunArea;
  private readonly mapAddr: bigint;
  private closed = false;
  /**
   * Thread id of the thread currently running this vCPU (0 = none). A shared cell
   * so kick() from another thread can find it: pass a SharedArrayBuffer-backed one.
   */
  readonly tidCell: Int32Array;
  /**
   * This thread's id, read once: a KvmVcpu object lives on one JS thread (a worker builds
   * its own), so gettid() per run() was a wasted koffi call per exit.
   */
  private tid = 0;

  constructor(
    readonly index: number,
    readonly fd: number,
    readonly mmapSize: number,
    private readonly ownsFd: boolean,
    tidCell?: Int32Array,
  ) {
    // SAFETY: maps the kernel's kvm_run page(s) for this vcpu fd; unmapped in close().
    this.mapAddr = BigInt(
      check('mmap(kvm_run)', c.mmap(0n, mmapSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0n) as bigint),
    );
    this.run_ = new RunArea(viewOf(this.mapAddr, mmapSize));
    this.tidCell = tidCell ?? new Int32Array(new SharedArrayBuffer(4));
  }

  private live(): void {
    if (this.closed) throw new KvmError('Closed', `vcpu ${this.index} is closed`, { index: this.index });
  }

  private get<T>(
    name:
      | 'GET_REGS'
      | 'GET_SREGS'
      | 'GET_FPU'
      | 'GET_MP_STATE'
      | 'GET_LAPIC'
      | 'GET_VCPU_EVENTS'
      | 'GET_XSAVE'
      | 'GET_XCRS'
      | 'GET_DEBUGREGS',
    def: { size: number },
    decode: (v: DataView, b: Buffer) => T,
  ): T {
    this.live();
    const { buf, view } = alloc(def.size);
    ioctlBuf(this.fd, name, buf);
    return decode(view, buf);
  }

  getRegs(): X86Regs {
    return this.get('GET_REGS', S.kvm_regs, codec.decodeRegs);
  }
  setRegs(r: X86Regs): void {
    this.live();
    ioctlBuf(this.fd, 'SET_REGS', codec.encodeRegs(r));
  }
  getSregs(): X86Sregs {
    return this.get('GET_SREGS', S.kvm_sregs, codec.decodeSregs);
  }
  setSregs(s: X86Sregs): void {
    this.live();
    ioctlBuf(this.fd, 'SET_SREGS', codec.encodeSregs(s));
  }
  getFpu(): X86Fpu {
    return this.get('GET_FPU', S.kvm_fpu, codec.decodeFpu);
  }
  setFpu(f: X86Fpu): void {
    this.live();
    ioctlBuf(this.fd, 'SET_FPU', codec.encodeFpu(f));
  }

  setCpuid(entries: CpuidEntry[]): void {
    this.live();
    ioctlBuf(this.fd, 'SET_CPUID2', codec.encodeCpuid2(entries));
  }

  getMsrs(indices: number[]): MsrEntry[] {
    this.live();
    const buf = codec.encodeMsrs(indices.map((index) => ({ index, data: 0n })));
    const n = ioctlBuf(this.fd, 'GET_MSRS', buf); // returns how many were read
    return codec.decodeMsrs(new DataView(buf.buffer, buf.byteOffset, buf.byteLength), n);
  }

  setMsrs(entries: MsrEntry[]): void {
    this.live();
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
    const n = this.get('GET_MP_STATE', S.kvm_mp_state, (v) => v.getUint32(0, true));
    const s = codec.mpStateName(n);
    if (!s) throw new KvmError('Ioctl', `KVM_GET_MP_STATE returned unknown state ${n}`, { state: n });
    return s;
  }

  setMpState(s: MpState): void {
    this.live();
    const { buf, view } = alloc(S.kvm_mp_state);
    view.setUint32(0, codec.mpStateNumber(s), true);
    ioctlBuf(this.fd, 'SET_MP_STATE', buf);
  }

  getLapic(): Uint8Array {
    return this.get('GET_LAPIC', S.kvm_lapic_state, (_v, b) => new Uint8Array(b));
  }

  setLapic(regs: Uint8Array): void {
    this.live();
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

  restoreExtendedState(s: Record<string, Uint8Array>): void {
    this.live();
    const plan = [
      [EXT_STATE_KEYS.xcrs, 'SET_XCRS', S.kvm_xcrs],
      [EXT_STATE_KEYS.xsave, 'SET_XSAVE', S.kvm_xsave],
      [EXT_STATE_KEYS.debugregs, 'SET_DEBUGREGS', S.kvm_debugregs],
      [EXT_STATE_KEYS.events, 'SET_VCPU_EVENTS', S.kvm_vcpu_events],
    ] as const;
    for (const k of Object.keys(s)) {
      if (!plan.some(([key]) => key === k))
        throw new KvmError('InvalidArgument', `unknown vCPU state blob '${k}'`, { key: k });
    }
    for (const [key, ioctl, def] of plan) {
      const blob = s[key];
      if (!blob) continue;
      if (blob.length !== def.size)
        throw new KvmError('InvalidArgument', `vCPU state '${key}' must be ${def.size} bytes, got ${blob.length}`, {
          key,
        });
      ioctlBuf(this.fd, ioctl, Buffer.from(blob));
    }
  }

  /**
   * One KVM_RUN on the calling thread; returns the raw exit reason (EXIT.INTR when
   * the call was interrupted by a kick). Clears immediate_exit after a kick.
   */
  runRaw(): number {
    const r = Number(c.ioctlInt(this.fd, KVM.RUN, 0));
    if (r < 0) {
      const e = errno();
      if (e === ERRNO.EINTR || e === ERRNO.EAGAIN) {
        this.run_.immediateExit = 0;
        return EXIT.INTR;
      }
      throw ioctlError('RUN', this.fd, e, `vcpu ${this.index}`);
    }
    return this.run_.exitReason;
  }

  run(): VcpuExit {
    this.live();
    if (this.tid === 0) this.tid = Number(c.gettid(SYS_gettid));
    Atomics.store(this.tidCell, 0, this.tid);
    try {
      return this.runRaw() === EXIT.INTR ? { kind: 'intr' } : this.run_.decode();
    } finally {
      Atomics.store(this.tidCell, 0, 0);
    }
  }

  kick(): void {
    if (this.closed) return;
    ensureKickHandler();
    this.run_.immediateExit = 1;
    const tid = Atomics.load(this.tidCell, 0);
    if (tid > 0 && kickHandlerInstalled()) signalThread(tid);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    c.munmap(this.mapAddr, this.mmapSize);
    if (this.ownsFd) c.close(this.fd);
  }
}
