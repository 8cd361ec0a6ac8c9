// Split virtqueue layout and flags (virtio 1.2 §2.7).
/** Descriptor flag: the chain continues at `next`. */
export const VIRTQ_DESC_F_NEXT = 1;
/** Descriptor flag: the buffer is device-writable (else device-readable). */
export const VIRTQ_DESC_F_WRITE = 2;
/** Descriptor flag: the buffer holds an indirect descriptor table. */
export const VIRTQ_DESC_F_INDIRECT = 4;

/** used.flags: the device asks the driver not to notify (no EVENT_IDX). */
export const VRING_USED_F_NO_NOTIFY = 1;
/** avail.flags: the driver asks the device not to interrupt (no EVENT_IDX). */
export const VRING_AVAIL_F_NO_INTERRUPT = 1;

/** Bytes of one descriptor table entry (addr u64, len u32, flags u16, next u16). */
export const DESCRIPTOR_SIZE = 16;
/** Bytes of one used ring element (id u32, len u32). */
export const USED_ELEM_SIZE = 8;
/** The largest queue size the split ring format allows. */
export const MAX_QUEUE_SIZE = 32768;
/** Chains may carry at most 2^32 - 1 bytes (virtio 1.2 §2.7.5.2). */
export const MAX_CHAIN_BYTES = 0xffff_ffff;

/** Required alignment of the descriptor table's guest address. */
export const DESC_TABLE_ALIGN = 16n;
/** Required alignment of the available ring's guest address. */
export const AVAIL_RING_ALIGN = 2n;
/** Required alignment of the used ring's guest address. */
export const USED_RING_ALIGN = 4n;

/** Bytes of each ring for a queue of `size` entries (with the event-idx trailers). */
export const descTableBytes = (size: number): number => DESCRIPTOR_SIZE * size;
/** Bytes of the available ring: flags, idx, `size` entries, used_event. */
export const availRingBytes = (size: number): number => 6 + 2 * size;
/** Bytes of the used ring: flags, idx, `size` elements, avail_event. */
export const usedRingBytes = (size: number): number => 6 + USED_ELEM_SIZE * size;

/** Device status bits (virtio 1.2 §2.1). */
export const DeviceStatus = {
  ACKNOWLEDGE: 1,
  DRIVER: 2,
  DRIVER_OK: 4,
  FEATURES_OK: 8,
  DEVICE_NEEDS_RESET: 0x40,
  FAILED: 0x80,
} as const;

/** Whether `n` is a positive integer power of two (queue sizes). */
export const isPowerOfTwo = (n: number): boolean => Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
