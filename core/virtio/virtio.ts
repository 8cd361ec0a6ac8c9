import type { GuestAddress } from '../address.js';
import type { GuestMemory } from '../memory/guest-memory.js';
import type { EventFd } from '../events/event-loop.js';

/** Feature bit 32: a modern (virtio 1.x) device; every device here offers it. */
export const VIRTIO_F_VERSION_1 = 1n << 32n;
/** Feature bit 28: descriptors may point at indirect descriptor tables. */
export const VIRTIO_F_RING_INDIRECT_DESC = 1n << 28n;
/** Feature bit 29: used_event / avail_event suppress notifications and interrupts. */
export const VIRTIO_F_RING_EVENT_IDX = 1n << 29n;

/** Device type ids (virtio 1.2 §5) of the devices tsvmm has or plans. */
export const VirtioDeviceType = { net: 1, block: 2, console: 3, rng: 4, balloon: 5, vsock: 19, fs: 26 } as const;

/** One buffer of a descriptor chain, already validated to lie in guest memory. */
export interface DescriptorBuffer {
  readonly addr: GuestAddress;
  readonly len: number;
}

/**
 * A chain's buffers as two parallel arrays, device-readable ones first: guest-physical addresses as plain numbers
 * (all below 2^53) and lengths. For a device's hot path: no object per buffer.
 */
export interface FlatBuffers {
  readonly count: number;
  /** Buffers [0, readableCount) are device-readable, the rest device-writable. */
  readonly readableCount: number;
  readonly addrs: readonly number[];
  readonly lens: readonly number[];
}

/**
 * A descriptor chain popped from the available ring, split into the buffers the
 * device reads (driver -> device) and those it writes (device -> driver).
 * Popping validates the whole chain (bounded length, no nested indirect tables,
 * address + length inside guest memory, readable before writable).
 */
export interface DescriptorChain {
  readonly head: number;
  readonly readable: readonly DescriptorBuffer[];
  readonly writable: readonly DescriptorBuffer[];
  readonly readableLength: number;
  readonly writableLength: number;
  /**
   * Optional: the same buffers as FlatBuffers, where every address is below 2^53 (undefined otherwise, or where
   * the queue does not offer it); a device then falls back to `readable` / `writable`.
   */
  readonly flat?: FlatBuffers;
}

/** A split virtqueue seen from the device side. */
export interface VirtQueue {
  readonly index: number;
  readonly size: number;
  /** Next available chain, or undefined. Throws VirtQueueError when the driver broke the rules. */
  pop(): DescriptorChain | undefined;
  /** Returns a chain to the driver with `len` bytes written. */
  addUsed(head: number, len: number): void;
  /** Whether the driver wants an interrupt for what was added since the last call (EVENT_IDX aware). */
  needsNotification(): boolean;
  /** Ask the driver (not) to notify for new buffers; enable returns true when buffers arrived meanwhile. */
  enableNotification(): boolean;
  disableNotification(): void;
  /**
   * The driver's layout of the queue (guest-physical ring addresses, whether it enabled it; `size` is the size it
   * chose), for a device whose queues another process serves (vhost-user). The transports' SplitQueue has them.
   */
  readonly ready?: boolean;
  readonly descTable?: bigint;
  readonly availRing?: bigint;
  readonly usedRing?: bigint;
}

/** Interrupt delivery from a device to the driver, provided by the transport. */
export interface VirtioInterrupt {
  signalUsedQueue(queueIndex: number): void;
  signalConfigChange(): void;
}

/** What a device gets when the driver set DRIVER_OK: negotiated features, memory, queues, events, interrupts. */
export interface VirtioActivation {
  /** Features the driver accepted. */
  features: bigint;
  memory: GuestMemory;
  queues: VirtQueue[];
  /** One eventfd per queue, signalled when the driver notifies (ioeventfd); the device watches them. */
  queueEvents: EventFd[];
  interrupt: VirtioInterrupt;
  /**
   * Optional, per queue: an eventfd that interrupts the driver for that queue when written (e.g. an irqfd on
   * the queue's MSI-X vector), for a device whose queues another process serves (vhost-user hands it to the
   * back end as the call fd). Absent (or undefined for a queue): the device calls interrupt.signalUsedQueue.
   */
  callEvents?: readonly (EventFd | undefined)[];
  /** The device calls this when the driver broke the rules; the transport sets DEVICE_NEEDS_RESET. */
  needsReset(reason: string): void;
}

/** A virtio device model, independent of its transport (mmio, pci). */
export interface VirtioDevice {
  readonly id: string;
  readonly deviceType: number;
  /** Maximum size of each queue; the array length is the number of queues. */
  readonly queueMaxSizes: readonly number[];
  /** Offered features (must include VIRTIO_F_VERSION_1). */
  readonly deviceFeatures: bigint;
  /**
   * Bytes of device-specific configuration space (optional). When set, the transport
   * bounds every config access to it: reads past the end return zeros, writes past it are dropped.
   */
  readonly configSize?: number;
  readConfig(offset: number, data: Uint8Array): void;
  writeConfig(offset: number, data: Uint8Array): void;
  /** DRIVER_OK was set: start serving the queues. */
  activate(a: VirtioActivation): void;
  /** The driver reset the device: stop using the queues and drop in-flight state. */
  reset(): void;
  /**
   * Optional, for pausing and snapshots: true while no request is in flight (a device whose state is incomplete
   * while one is, e.g. virtio-blk, implements it with idle()). Reached through the transport's `device`.
   */
  readonly quiet?: boolean;
  /** Optional: resolves once the device is quiet (see `quiet`). */
  idle?(): Promise<void>;
}
