import type { Disposable } from './bus.js';

/**
 * Fast paths a PIO device may publish so that a vCPU runner which runs vCPUs on other
 * threads (plugins/kvm's WorkerVcpuRunner) completes some 1-byte accesses on the vCPU's
 * own thread instead of handing them to the main thread. The device stays the only
 * owner of its state: the runner only reads what the device published, and writes it
 * queues reach the device through the Bus, in program order, before anything else
 * from that vCPU (or any other vCPU's access) is handled on the main thread.
 *
 * `offset` is relative to the start of the device's PIO registration. Everything not
 * published takes the normal path. A runner without fast paths simply never calls
 * attachPioFastPath; a device must behave the same either way.
 */
export interface PioFastPath {
  /**
   * 1-byte reads at `offset` are answered with `value` on the vCPU's thread; `undefined`
   * sends them to the device again. Publish a value only while reading the register has
   * no side effects, and only one that queued writes still waiting cannot change.
   */
  setReadValue(offset: number, value: number | undefined): void;
  /**
   * 1-byte writes at `offset`: 'device' (the normal path), 'queue' (appended to a per-vCPU
   * queue and delivered later through Bus.write exactly as if they had come one by one;
   * a full queue falls back to the normal path), 'drop' (ignored).
   */
  setWriteMode(offset: number, mode: PioWriteMode): void;
}

/** What a runner does with a 1-byte PIO write at a published offset (see PioFastPath.setWriteMode). */
export type PioWriteMode = 'device' | 'queue' | 'drop';

/** A PIO bus device that publishes fast paths. */
export interface PioFastPathPublisher {
  /**
   * Called on the main thread by a runner that supports fast paths. Publish at once and keep
   * the published values current; the returned handle stops publishing (the runner resets the
   * entries itself).
   */
  attachPioFastPath(fp: PioFastPath): Disposable;
}

/** True when a bus device offers PIO fast paths (has attachPioFastPath); runners test this before attaching. */
export const isPioFastPathPublisher = (d: unknown): d is PioFastPathPublisher =>
  typeof (d as Partial<PioFastPathPublisher> | undefined)?.attachPioFastPath === 'function';

/**
 * The MMIO counterpart (4-byte registers only, a handful per runner): `offset` is relative to the
 * start of the device's MMIO registration. A runner answers a published read on the vCPU's thread
 * only while no queued write of any vCPU is still waiting (a queued write may change the value), and
 * delivers queued writes through Bus.write('mmio', ...) with 4 bytes, in program order, before
 * anything else from that vCPU. A device must behave the same without it.
 */
export interface MmioFastPath {
  /**
   * 4-byte reads at `offset` answer `value` (an unsigned 32-bit number); `undefined` sends them to the device
   * again.
   */
  setReadValue(offset: number, value: number | undefined): void;
  /** 4-byte writes at `offset`: 'device' (the normal path) or 'queue' (delivered later, see above). */
  setWriteMode(offset: number, mode: MmioWriteMode): void;
  /**
   * Optional (a runner may lack it): a 32-bit word shared with the vCPU threads, for an
   * interrupt-status/acknowledge register pair. From the call on, 4-byte reads at `readOffset`
   * return the word and 4-byte writes at `clearOffset` clear the written bits (within `clearMask`)
   * in it, both atomically on the vCPU's thread at the moment of the access, in place of any
   * setReadValue/setWriteMode for those offsets. The device keeps its register in the word from
   * then on (also after the handle is disposed: the word stays valid memory) and changes it only
   * through the word's atomic operations. The word holds `initial` before any vCPU can see it.
   * `undefined` when none is left or the offsets are not
   * usable: the device keeps its register itself and the accesses take the normal path.
   */
  shareClearableWord?(
    readOffset: number,
    clearOffset: number,
    clearMask: number,
    initial: number,
  ): SharedWord | undefined;
}

/** A 32-bit word in memory shared with other threads; every operation is one atomic access. */
export interface SharedWord {
  /** The unsigned value. */
  load(): number;
  store(value: number): void;
  /** Sets `bits`; returns the unsigned value before. */
  or(bits: number): number;
  /** Clears `bits`; returns the unsigned value before. */
  clear(bits: number): number;
}

/** What a runner does with a 4-byte MMIO write at a published offset (see MmioFastPath.setWriteMode). */
export type MmioWriteMode = 'device' | 'queue';

/** An MMIO bus device that publishes fast paths (same contract as PioFastPathPublisher). */
export interface MmioFastPathPublisher {
  attachMmioFastPath(fp: MmioFastPath): Disposable;
}

/** True when a bus device offers MMIO fast paths (has attachMmioFastPath); runners test this before attaching. */
export const isMmioFastPathPublisher = (d: unknown): d is MmioFastPathPublisher =>
  typeof (d as Partial<MmioFastPathPublisher> | undefined)?.attachMmioFastPath === 'function';
