/**
 * The kvm_run page of one vCPU (mmap of the vcpu fd at offset 0), read through
 * precomputed offsets. A RunArea is a view over a mapping somebody else owns
 * (KvmVcpu or the vCPU worker); it is valid until that mapping is unmapped.
 * Every length the kernel reports is checked against the mapping before a
 * data view is made.
 */
import type { VcpuExit } from '../../core/hypervisor/hypervisor.js';
import { offsetOf } from './abi/layout.js';
import { kvm_run } from './abi/structs.js';
import { EXIT, EXIT_IO_OUT, SYSTEM_EVENT } from './abi/ioctls.js';

/** Byte offsets of the kvm_run fields the plugin reads and writes, computed once from the struct layout. */
export const RUN = {
  immediateExit: offsetOf(kvm_run, 'immediate_exit'),
  exitReason: offsetOf(kvm_run, 'exit_reason'),
  ioDirection: offsetOf(kvm_run, 'io.direction'),
  ioSize: offsetOf(kvm_run, 'io.size'),
  ioPort: offsetOf(kvm_run, 'io.port'),
  ioCount: offsetOf(kvm_run, 'io.count'),
  ioDataOffset: offsetOf(kvm_run, 'io.data_offset'),
  mmioAddr: offsetOf(kvm_run, 'mmio.phys_addr'),
  mmioData: offsetOf(kvm_run, 'mmio.data'),
  mmioLen: offsetOf(kvm_run, 'mmio.len'),
  mmioIsWrite: offsetOf(kvm_run, 'mmio.is_write'),
  failEntryReason: offsetOf(kvm_run, 'fail_entry.hardware_entry_failure_reason'),
  failEntryCpu: offsetOf(kvm_run, 'fail_entry.cpu'),
  internalSuberror: offsetOf(kvm_run, 'internal.suberror'),
  internalNdata: offsetOf(kvm_run, 'internal.ndata'),
  internalData: offsetOf(kvm_run, 'internal.data'),
  systemEventType: offsetOf(kvm_run, 'system_event.type'),
  hwExitReason: offsetOf(kvm_run, 'hw.hardware_exit_reason'),
} as const;

/**
 * Reads a vCPU's exit from its kvm_run page (see the file comment): the decoded exit, and views of the I/O data the
 * main thread fills for reads.
 */
export class RunArea {
  readonly view: DataView;
  readonly bytes: Uint8Array;
  /**
   * Cached data views (hot path: no Uint8Array per exit). A view aliases this page, exactly
   * like a fresh subarray would, so handing the same object out again changes nothing for
   * callers; it is only valid until the next KVM_RUN either way.
   */
  private ioViewOff = -1;
  private ioViewLen = -1;
  private ioView: Uint8Array;
  private readonly mmioViews: Uint8Array[];

  /** `bytes` covers the whole mapping (KVM_GET_VCPU_MMAP_SIZE bytes). */
  constructor(bytes: Uint8Array) {
    if (bytes.byteLength < kvm_run.size)
      throw new RangeError(
        `kvm_run mapping of ${bytes.byteLength} bytes is smaller than struct kvm_run (${kvm_run.size})`,
      );
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.ioView = bytes.subarray(0, 0);
    this.mmioViews = Array.from({ length: 9 }, (_, len) => bytes.subarray(RUN.mmioData, RUN.mmioData + len));
  }

  /** The IO data view for (offset, length), reused while the kernel keeps reporting the same pair. */
  private ioData(off: number, len: number): Uint8Array {
    if (off !== this.ioViewOff || len !== this.ioViewLen) {
      this.ioView = this.bytes.subarray(off, off + len);
      this.ioViewOff = off;
      this.ioViewLen = len;
    }
    return this.ioView;
  }

  get exitReason(): number {
    return this.view.getUint32(RUN.exitReason, true);
  }
  get immediateExit(): number {
    return this.view.getUint8(RUN.immediateExit);
  }
  set immediateExit(v: number) {
    this.view.setUint8(RUN.immediateExit, v);
  }

  /** Decodes the exit the last KVM_RUN reported. IO/MMIO data views alias this page. */
  decode(): VcpuExit {
    const v = this.view;
    const reason = this.exitReason;
    switch (reason) {
      case EXIT.IO: {
        const size = v.getUint8(RUN.ioSize);
        const count = v.getUint32(RUN.ioCount, true);
        // data_offset is a u64: read as two u32 halves (no BigInt on the PIO path); a non-zero
        // high half can never lie inside the mapping.
        const offLo = v.getUint32(RUN.ioDataOffset, true);
        const offHi = v.getUint32(RUN.ioDataOffset + 4, true);
        const len = size * count;
        if (
          (size !== 1 && size !== 2 && size !== 4) ||
          count === 0 ||
          offHi !== 0 ||
          offLo + len > this.bytes.byteLength
        ) {
          return { kind: 'internal-error', suberror: -1 };
        }
        return {
          kind: 'io',
          space: 'pio',
          direction: v.getUint8(RUN.ioDirection) === EXIT_IO_OUT ? 'out' : 'in',
          port: v.getUint16(RUN.ioPort, true),
          size,
          count,
          data: this.ioData(offLo, len),
        };
      }
      case EXIT.MMIO: {
        const len = v.getUint32(RUN.mmioLen, true);
        if (len === 0 || len > 8) return { kind: 'internal-error', suberror: -1 };
        return {
          kind: 'mmio',
          address: v.getBigUint64(RUN.mmioAddr, true),
          isWrite: v.getUint8(RUN.mmioIsWrite) !== 0,
          data: this.mmioViews[len],
        };
      }
      case EXIT.HLT:
        return { kind: 'hlt' };
      case EXIT.SHUTDOWN:
        return { kind: 'shutdown' };
      case EXIT.INTR:
        return { kind: 'intr' };
      case EXIT.DEBUG:
        return { kind: 'debug' };
      case EXIT.SYSTEM_EVENT: {
        const raw = v.getUint32(RUN.systemEventType, true);
        const type =
          raw === SYSTEM_EVENT.SHUTDOWN
            ? 'shutdown'
            : raw === SYSTEM_EVENT.RESET
              ? 'reset'
              : raw === SYSTEM_EVENT.CRASH
                ? 'crash'
                : 'other';
        return { kind: 'system-event', type, raw };
      }
      case EXIT.INTERNAL_ERROR:
        return { kind: 'internal-error', suberror: v.getUint32(RUN.internalSuberror, true) };
      case EXIT.FAIL_ENTRY:
        return { kind: 'fail-entry', reason: v.getBigUint64(RUN.failEntryReason, true) };
      default:
        return { kind: 'unknown', reason };
    }
  }

  /** Extra words of an internal-error exit (KVM_CAP_INTERNAL_ERROR_DATA), at most 16. */
  internalData(): bigint[] {
    const n = Math.min(this.view.getUint32(RUN.internalNdata, true), 16);
    return Array.from({ length: n }, (_, i) => this.view.getBigUint64(RUN.internalData + 8 * i, true));
  }
}
