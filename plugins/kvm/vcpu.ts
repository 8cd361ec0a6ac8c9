import type { MpState, Vcpu, VcpuExit } from '../../core/hypervisor/hypervisor.js';
import type { ArchExtensionKey } from '../../core/hypervisor/extension.js';
import type { VcpuState } from '../../core/hypervisor/vcpu-state.js';
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
import { mpStateName, mpStateNumber } from './abi/mp-state.js';
import type { KvmArch, KvmArchVcpu } from './arch.js';
import { readRunState, type VcpuRunStateReading } from './run-state.js';
import { EXIT } from './abi/ioctls.js';
import { KvmError } from './errors.js';
import { ioctlBuf, ioctlError } from './native.js';
import { RunArea } from './run-area.js';
import { ensureKickHandler, kickHandlerInstalled, signalThread } from './kick.js';
import { KVM } from './abi/ioctls.js';

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
  /** This host arch's part of the vCPU (registers, state), built on first use. */
  private archPart?: KvmArchVcpu;

  constructor(
    readonly index: number,
    readonly fd: number,
    readonly mmapSize: number,
    private readonly ownsFd: boolean,
    tidCell?: Int32Array,
    /** The host arch's part (extensions, state); the VM passes it, a worker's copy has none. */
    private readonly kvmArch?: KvmArch,
  ) {
    // SAFETY: maps the kernel's kvm_run page(s) for this vcpu fd; unmapped in close().
    this.mapAddr = BigInt(
      check('mmap(kvm_run)', c.mmap(0n, mmapSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0n) as bigint),
    );
    this.run_ = new RunArea(viewOf(this.mapAddr, mmapSize));
    this.tidCell = tidCell ?? new Int32Array(new SharedArrayBuffer(4));
  }

  /** Throws KvmError 'Closed' once close() ran (the arch part checks before each ioctl). */
  assertOpen(): void {
    if (this.closed) throw new KvmError('Closed', `vcpu ${this.index} is closed`, { index: this.index });
  }
  private live(): void {
    this.assertOpen();
  }

  private arch_(): KvmArchVcpu {
    if (!this.kvmArch)
      throw new KvmError('InvalidArgument', `vcpu ${this.index} was built without its arch part (a worker's copy)`);
    return (this.archPart ??= this.kvmArch.vcpu(this));
  }

  /** The host's arch name (KVM runs guests of the host's arch). */
  get arch(): string {
    return this.kvmArch?.name ?? process.arch;
  }

  extension<T>(key: ArchExtensionKey<T>): T | undefined {
    return this.arch_().extension(key);
  }

  saveState(): VcpuState {
    this.live();
    return this.arch_().saveState();
  }

  restoreState(state: unknown): void {
    this.live();
    this.arch_().restoreState(state);
  }

  /** Run state, interrupt flag and program counter (the runner's vcpuStates); on the vCPU's own thread. */
  runState(): VcpuRunStateReading {
    this.live();
    return readRunState(this);
  }

  /** KVM_GET_MP_STATE (every arch KVM supports has it). */
  getMpState(): MpState {
    this.live();
    const { buf, view } = alloc(S.kvm_mp_state);
    ioctlBuf(this.fd, 'GET_MP_STATE', buf);
    const n = view.getUint32(0, true);
    const s = mpStateName(n);
    if (!s) throw new KvmError('Ioctl', `KVM_GET_MP_STATE returned unknown state ${n}`, { state: n });
    return s;
  }

  /** KVM_SET_MP_STATE. */
  setMpState(s: MpState): void {
    this.live();
    const { buf, view } = alloc(S.kvm_mp_state);
    view.setUint32(0, mpStateNumber(s), true);
    ioctlBuf(this.fd, 'SET_MP_STATE', buf);
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
