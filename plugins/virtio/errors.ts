import { VmmError } from '../../core/errors.js';

/** Kinds of VirtQueueError: each validation rule of the queue and descriptor chains has its own. */
export type VirtQueueErrorKind =
  /** The queue size is 0, not a power of two, or above the device's maximum. */
  | 'InvalidSize'
  /** A ring address breaks the required alignment (desc 16, avail 2, used 4). */
  | 'InvalidAlignment'
  /** A ring does not lie in guest memory. */
  | 'RingOutsideMemory'
  /** A ring the device writes (the used ring) lies in read-only guest memory. */
  | 'ReadOnlyMemory'
  /** avail.idx moved more than queue-size entries past what the device consumed. */
  | 'InvalidAvailRingIndex'
  /** The driver made more chains available than the queue holds while the device still has queue-size chains in use. */
  | 'QueueSizeExceeded'
  /** A descriptor index (head, next, or used-ring id) is not below the table size. */
  | 'InvalidDescriptorIndex'
  /** The chain visits more descriptors than its table holds (a loop). */
  | 'ChainTooLong'
  /** An indirect descriptor inside an indirect table. */
  | 'NestedIndirectDescriptor'
  /** An indirect table whose length is 0, not a multiple of 16, or too large; or INDIRECT with NEXT. */
  | 'InvalidIndirectDescriptorTable'
  /** The driver used an indirect descriptor without negotiating VIRTIO_F_RING_INDIRECT_DESC. */
  | 'IndirectNotNegotiated'
  /** A buffer (or indirect table) address + length overflows or leaves guest memory. */
  | 'InvalidBufferAddress'
  /** A device-readable buffer follows a device-writable one. */
  | 'ReadableAfterWritable'
  /** The buffers of one chain add up to more than 2^32 - 1 bytes. */
  | 'ChainLengthOverflow'
  /** A used length that is not a u32, or a used element for a chain the device never popped. */
  | 'InvalidUsedLength'
  /** The queue is used before being set up (not ready). */
  | 'NotReady'
  /** A guest memory access failed unexpectedly (the cause is attached). */
  | 'GuestMemory'
  /** A saved queue state failed validation. */
  | 'InvalidState'
  /** A chain reader/writer was asked for more bytes than its buffers hold. */
  | 'ShortChain';

/** The one error class of the virtio queue module: a misbehaving driver or a bad queue setup. */
export class VirtQueueError extends VmmError<VirtQueueErrorKind> {}
