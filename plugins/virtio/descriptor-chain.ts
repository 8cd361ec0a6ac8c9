import { GuestAddress } from '../../core/address.js';
import type { GuestMemory } from '../../core/memory/guest-memory.js';
import type { DescriptorBuffer, DescriptorChain, FlatBuffers } from '../../core/virtio/virtio.js';
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
  /**
   * Optional: `memorySpans(memory)`, computed once per activation. Lets the walker check a buffer against the
   * regions with plain numbers; without it (or for a buffer it does not cover) the bigint check runs.
   */
  spans?: Float64Array;
}

/** 2^53 as the high 32-bit word of a descriptor address: below it, hi * 2^32 + lo is an exact JS number. */
const SAFE_HI = 0x20_0000;

/**
 * The guest memory regions as [start, end) pairs of plain numbers, for the regions that end at or below 2^53
 * (others are left out: a buffer there takes the bigint check). Regions are fixed for an activation.
 */
export function memorySpans(memory: GuestMemory): Float64Array {
  const out: number[] = [];
  for (const r of memory.regions) {
    if (r.range.end <= BigInt(Number.MAX_SAFE_INTEGER) + 1n) out.push(Number(r.range.start.value), Number(r.range.end));
  }
  return Float64Array.from(out);
}

/** A descriptor address from its two 32-bit words, as a bigint (the slow path and error messages only). */
const toBig = (hi: number, lo: number): bigint => (BigInt(hi) << 32n) | BigInt(lo);

/** Whether [addr, addr + len) lies inside one of `spans` (exact: every bound is below 2^53). */
function inSpans(spans: Float64Array, addr: number, len: number): boolean {
  for (let i = 0; i < spans.length; i += 2) if (addr >= spans[i]! && addr + len <= spans[i + 1]!) return true;
  return false;
}

/**
 * A validated chain. The walk keeps each buffer as a number address and a length in two plain arrays, readable
 * buffers first (no object, bigint or GuestAddress per descriptor); `readable` / `writable` build the
 * DescriptorBuffer objects on first use, for the devices that want them. An address at or above 2^53 is kept as a
 * bigint (`big`), and then `flat` is undefined.
 */
class ValidatedChain implements DescriptorChain {
  private r?: readonly DescriptorBuffer[];
  private w?: readonly DescriptorBuffer[];
  private f?: FlatBuffers;

  constructor(
    readonly head: number,
    private readonly addrs: number[],
    private readonly lens: number[],
    private readonly readableCount: number,
    readonly readableLength: number,
    readonly writableLength: number,
    /** Per buffer, its address as a bigint where it is at or above 2^53 (else undefined); absent when none is. */
    private readonly big: (bigint | undefined)[] | undefined,
  ) {}

  get readable(): readonly DescriptorBuffer[] {
    return (this.r ??= this.buffers(0, this.readableCount));
  }
  get writable(): readonly DescriptorBuffer[] {
    return (this.w ??= this.buffers(this.readableCount, this.addrs.length));
  }

  get flat(): FlatBuffers | undefined {
    if (this.big) return undefined;
    return (this.f ??= {
      count: this.addrs.length,
      readableCount: this.readableCount,
      addrs: this.addrs,
      lens: this.lens,
    });
  }

  private buffers(from: number, to: number): readonly DescriptorBuffer[] {
    const out: DescriptorBuffer[] = [];
    for (let i = from; i < to; i++) {
      out.push(Object.freeze({ addr: GuestAddress.of(this.big?.[i] ?? this.addrs[i]!), len: this.lens[i]! }));
    }
    return Object.freeze(out);
  }
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
 * An address below 2^53 is read and checked as a plain number (against `src.spans` when given), one above it as a
 * bigint; both give the same answers.
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
  const spans = src.spans;
  const addrs: number[] = [];
  const lens: number[] = [];
  let big: (bigint | undefined)[] | undefined;
  let readableCount = 0;
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
    const lo = table.u32(off);
    const hi = table.u32(off + 4);
    const len = table.u32(off + 8);
    const flags = table.u16(off + 12);
    const next = table.u16(off + 14);
    // Exact as a number below 2^53; else the bigint (only a memory region that high can make it valid).
    const addrNum = hi < SAFE_HI ? hi * 0x1_0000_0000 + lo : -1;

    if (flags & VIRTQ_DESC_F_INDIRECT) {
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
      if (flags & VIRTQ_DESC_F_NEXT) {
        throw new VirtQueueError('InvalidIndirectDescriptorTable', `descriptor ${index} sets both INDIRECT and NEXT`, {
          head,
          index,
        });
      }
      if (len === 0 || len % DESCRIPTOR_SIZE !== 0 || len / DESCRIPTOR_SIZE > 0xffff) {
        throw new VirtQueueError(
          'InvalidIndirectDescriptorTable',
          `indirect table length ${len} is not a non-zero multiple of 16 (at most 65535 entries)`,
          { head, index, len },
        );
      }
      const addr = toBig(hi, lo);
      if (!inGuestMemory(memory, addr, len)) {
        throw new VirtQueueError(
          'InvalidBufferAddress',
          `indirect table [0x${addr.toString(16)}, +${len}) is outside guest memory`,
          { head, index, addr, len },
        );
      }
      table = new RingView(memory, addr, len);
      tableSize = len / DESCRIPTOR_SIZE;
      ttl = tableSize;
      index = 0;
      inIndirect = true;
      continue;
    }

    const isWrite = (flags & VIRTQ_DESC_F_WRITE) !== 0;
    if (isWrite) sawWritable = true;
    else if (sawWritable) {
      throw new VirtQueueError(
        'ReadableAfterWritable',
        `device-readable descriptor ${index} follows a device-writable one in chain ${head}`,
        { head, index },
      );
    }
    if (len > 0) {
      const fast = addrNum >= 0 && spans !== undefined && inSpans(spans, addrNum, len);
      if (!fast && !inGuestMemory(memory, toBig(hi, lo), len)) {
        const addr = toBig(hi, lo);
        throw new VirtQueueError(
          'InvalidBufferAddress',
          `buffer [0x${addr.toString(16)}, +${len}) of descriptor ${index} is outside guest memory`,
          { head, index, addr, len },
        );
      }
      if (readableLength + writableLength + len > MAX_CHAIN_BYTES) {
        throw new VirtQueueError('ChainLengthOverflow', `chain ${head} carries more than 2^32 - 1 bytes`, { head });
      }
      if (addrNum < 0) (big ??= [])[addrs.length] = toBig(hi, lo);
      addrs.push(addrNum < 0 ? 0 : addrNum);
      lens.push(len);
      if (isWrite) writableLength += len;
      else {
        readableCount++;
        readableLength += len;
      }
    }

    if (!(flags & VIRTQ_DESC_F_NEXT)) break;
    if (next >= tableSize) {
      throw new VirtQueueError(
        'InvalidDescriptorIndex',
        `descriptor ${index} links to ${next}, not below the table size ${tableSize}`,
        { head, index, next, tableSize },
      );
    }
    index = next;
  }
  return new ValidatedChain(head, addrs, lens, readableCount, readableLength, writableLength, big);
}
