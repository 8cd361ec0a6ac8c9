import { GuestAddress } from '../../core/address.js';
import type { GuestMemory } from '../../core/memory/guest-memory.js';
import type { DescriptorBuffer, DescriptorChain } from '../../core/virtio/virtio.js';
import {
  DESCRIPTOR_SIZE,
  MAX_CHAIN_BYTES,
  VIRTQ_DESC_F_INDIRECT,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_WRITE,
} from './constants.js';
import { VirtQueueError } from './errors.js';
import { RingView, inGuestMemory } from './ring-view.js';

/** A raw descriptor as the driver wrote it. */
export interface Descriptor {
  addr: bigint;
  len: number;
  flags: number;
  next: number;
}

/** Where the chain walker reads descriptors from and what it may accept. */
export interface ChainSource {
  memory: GuestMemory;
  /** The queue's descriptor table, validated in memory for `queueSize` entries. */
  descTable: RingView;
  queueSize: number;
  /** VIRTIO_F_RING_INDIRECT_DESC was negotiated. */
  indirect: boolean;
}

/** A validated chain: immutable buffers, split into device-readable then device-writable. */
class ValidatedChain implements DescriptorChain {
  constructor(
    readonly head: number,
    readonly readable: readonly DescriptorBuffer[],
    readonly writable: readonly DescriptorBuffer[],
    readonly readableLength: number,
    readonly writableLength: number,
  ) {}
}

/**
 * Walks the chain starting at `head` and validates every rule (virtio 1.2 §2.7.5,
 * rust-vmm virtio-queue's checks):
 *  - every index (head, next) below its table size;
 *  - at most table-size hops per table (a loop ends with ChainTooLong);
 *  - an indirect table only when negotiated, never nested, never with NEXT, its
 *    length a non-zero multiple of 16 (at most 65535 entries) and inside guest memory;
 *  - each buffer's address + length free of 64-bit overflow and inside guest memory;
 *  - device-readable buffers before device-writable ones;
 *  - at most 2^32 - 1 bytes in total.
 * Zero-length buffers are validated for order but not returned.
 */
export function readChain(src: ChainSource, head: number): DescriptorChain {
  const { memory } = src;
  if (!Number.isInteger(head) || head < 0 || head >= src.queueSize) {
    throw new VirtQueueError(
      'InvalidDescriptorIndex',
      `chain head ${head} is not below the queue size ${src.queueSize}`,
      { head, size: src.queueSize },
    );
  }
  const readable: DescriptorBuffer[] = [];
  const writable: DescriptorBuffer[] = [];
  let readableLength = 0;
  let writableLength = 0;
  let table = src.descTable;
  let tableSize = src.queueSize;
  let ttl = tableSize;
  let index = head;
  let inIndirect = false;
  let sawWritable = false;

  for (;;) {
    if (ttl === 0) {
      throw new VirtQueueError(
        'ChainTooLong',
        `chain from head ${head} visits more than ${tableSize} descriptors (a loop?)`,
        { head, tableSize },
      );
    }
    ttl--;
    const off = index * DESCRIPTOR_SIZE;
    const d: Descriptor = {
      addr: table.u64(off),
      len: table.u32(off + 8),
      flags: table.u16(off + 12),
      next: table.u16(off + 14),
    };

    if (d.flags & VIRTQ_DESC_F_INDIRECT) {
      if (!src.indirect)
        throw new VirtQueueError(
          'IndirectNotNegotiated',
          `descriptor ${index} is indirect but VIRTIO_F_RING_INDIRECT_DESC was not negotiated`,
          { head, index },
        );
      if (inIndirect)
        throw new VirtQueueError('NestedIndirectDescriptor', `indirect descriptor ${index} inside an indirect table`, {
          head,
          index,
        });
      if (d.flags & VIRTQ_DESC_F_NEXT) {
        throw new VirtQueueError('InvalidIndirectDescriptorTable', `descriptor ${index} sets both INDIRECT and NEXT`, {
          head,
          index,
        });
      }
      if (d.len === 0 || d.len % DESCRIPTOR_SIZE !== 0 || d.len / DESCRIPTOR_SIZE > 0xffff) {
        throw new VirtQueueError(
          'InvalidIndirectDescriptorTable',
          `indirect table length ${d.len} is not a non-zero multiple of 16 (at most 65535 entries)`,
          { head, index, len: d.len },
        );
      }
      if (!inGuestMemory(memory, d.addr, d.len)) {
        throw new VirtQueueError(
          'InvalidBufferAddress',
          `indirect table [0x${d.addr.toString(16)}, +${d.len}) is outside guest memory`,
          { head, index, addr: d.addr, len: d.len },
        );
      }
      table = new RingView(memory, d.addr, d.len);
      tableSize = d.len / DESCRIPTOR_SIZE;
      ttl = tableSize;
      index = 0;
      inIndirect = true;
      continue;
    }

    const isWrite = (d.flags & VIRTQ_DESC_F_WRITE) !== 0;
    if (isWrite) sawWritable = true;
    else if (sawWritable) {
      throw new VirtQueueError(
        'ReadableAfterWritable',
        `device-readable descriptor ${index} follows a device-writable one in chain ${head}`,
        { head, index },
      );
    }
    if (d.len > 0) {
      if (!inGuestMemory(memory, d.addr, d.len)) {
        throw new VirtQueueError(
          'InvalidBufferAddress',
          `buffer [0x${d.addr.toString(16)}, +${d.len}) of descriptor ${index} is outside guest memory`,
          { head, index, addr: d.addr, len: d.len },
        );
      }
      if (readableLength + writableLength + d.len > MAX_CHAIN_BYTES) {
        throw new VirtQueueError('ChainLengthOverflow', `chain ${head} carries more than 2^32 - 1 bytes`, { head });
      }
      const buf: DescriptorBuffer = Object.freeze({ addr: GuestAddress.of(d.addr), len: d.len });
      if (isWrite) {
        writable.push(buf);
        writableLength += d.len;
      } else {
        readable.push(buf);
        readableLength += d.len;
      }
    }

    if (!(d.flags & VIRTQ_DESC_F_NEXT)) break;
    if (d.next >= tableSize) {
      throw new VirtQueueError(
        'InvalidDescriptorIndex',
        `descriptor ${index} links to ${d.next}, not below the table size ${tableSize}`,
        { head, index, next: d.next, tableSize },
      );
    }
    index = d.next;
  }
  return new ValidatedChain(head, Object.freeze(readable), Object.freeze(writable), readableLength, writableLength);
}
