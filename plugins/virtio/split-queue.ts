import { GuestAddress } from '../../core/address.js';
import type { GuestMemory } from '../../core/memory/guest-memory.js';
import type { DescriptorChain, VirtQueue } from '../../core/virtio/virtio.js';
import { VIRTIO_F_RING_EVENT_IDX, VIRTIO_F_RING_INDIRECT_DESC } from '../../core/virtio/virtio.js';
import {
  AVAIL_RING_ALIGN,
  DESC_TABLE_ALIGN,
  MAX_QUEUE_SIZE,
  USED_ELEM_SIZE,
  USED_RING_ALIGN,
  VRING_AVAIL_F_NO_INTERRUPT,
  VRING_USED_F_NO_NOTIFY,
  availRingBytes,
  descTableBytes,
  isPowerOfTwo,
  usedRingBytes,
} from './constants.js';
import { memorySpans, readChain, type ChainSource } from './descriptor-chain.js';
import { fullFence, type Fence } from './fence.js';
import { VirtQueueError } from './errors.js';
import { RingView } from './ring-view.js';

interface Rings {
  desc: RingView;
  avail: RingView;
  used: RingView;
}

const U64_LIMIT = 1n << 64n;

/** What a transport's registers configure for one queue (before DRIVER_OK). */
export interface SplitQueueLayout {
  size: number;
  ready: boolean;
  descTable: bigint;
  availRing: bigint;
  usedRing: bigint;
}

/** The device's progress through the rings, saved in snapshots. */
export interface SplitQueueProgress {
  nextAvail: number;
  nextUsed: number;
  /** used.idx when needsNotification() last ran (EVENT_IDX bookkeeping). */
  signalledUsed: number;
}

/**
 * A split virtqueue, device side (virtio 1.2 §2.7), over GuestMemory.
 *
 * The transport sets `size`, the ring addresses and `ready` from the driver's
 * register writes, then calls `activate(memory, features)` at DRIVER_OK, which
 * validates the layout. From then on every guest-controlled value is checked
 * before use; a broken rule throws VirtQueueError (the device should then ask
 * for NEEDS_RESET) and never touches memory outside the guest.
 *
 * Device loop with notification suppression (works with and without EVENT_IDX):
 *   do { q.disableNotification(); while ((c = q.pop())) {...; q.addUsed(c.head, n)} } while (q.enableNotification());
 *   if (q.needsNotification()) interrupt.signalUsedQueue(q.index);
 *
 * Memory ordering (x86-64 host; see fence.ts): TSO keeps stores in order (a used element
 * before the used.idx that publishes it) and loads in order (avail.idx before the ring slot
 * and descriptors it covers), and V8 keeps DataView accesses in program order, so those
 * need no instruction. A store followed by a load of another location is the one pair x86
 * reorders: enableNotification() (flags / avail_event, then avail.idx) and
 * needsNotification() (used.idx, published by addUsed, then used_event / avail flags) put a
 * full fence between them, as QEMU (smp_mb) and rust-vmm (fence(SeqCst)) do. The fence is
 * injectable so tests can check where it runs.
 */
export class SplitQueue implements VirtQueue {
  size: number;
  ready = false;
  descTable = 0n;
  availRing = 0n;
  usedRing = 0n;

  private memory: GuestMemory | undefined;
  private rings: Rings | undefined;
  /** What pop() hands the chain walker (built at activation). */
  private source: ChainSource | undefined;
  private eventIdx = false;
  private indirect = false;
  private nextAvail = 0;
  private nextUsed = 0;
  private signalledUsed = 0;

  constructor(
    readonly index: number,
    readonly maxSize: number,
    private readonly fence: Fence = fullFence,
  ) {
    if (!isPowerOfTwo(maxSize) || maxSize > MAX_QUEUE_SIZE) {
      throw new VirtQueueError(
        'InvalidSize',
        `queue ${index}: maximum size ${maxSize} must be a power of two in [1, ${MAX_QUEUE_SIZE}]`,
        { index, maxSize },
      );
    }
    this.size = maxSize;
  }

  /** Whether activate() succeeded and reset() has not run since. */
  get active(): boolean {
    return this.memory !== undefined;
  }

  get features(): { eventIdx: boolean; indirect: boolean } {
    return { eventIdx: this.eventIdx, indirect: this.indirect };
  }

  /** Checks the driver's layout: size, alignment, rings inside guest memory. Throws VirtQueueError. */
  validate(memory: GuestMemory): void {
    const { index, size } = this;
    if (!isPowerOfTwo(size) || size > this.maxSize) {
      throw new VirtQueueError(
        'InvalidSize',
        `queue ${index}: size ${size} must be a power of two in [1, ${this.maxSize}]`,
        { index, size, maxSize: this.maxSize },
      );
    }
    const rings: [string, bigint, bigint, number][] = [
      ['descriptor table', this.descTable, DESC_TABLE_ALIGN, descTableBytes(size)],
      ['available ring', this.availRing, AVAIL_RING_ALIGN, availRingBytes(size)],
      ['used ring', this.usedRing, USED_RING_ALIGN, usedRingBytes(size)],
    ];
    for (const [what, addr, align, bytes] of rings) {
      if (addr < 0n || addr % align !== 0n) {
        throw new VirtQueueError(
          'InvalidAlignment',
          `queue ${index}: ${what} at 0x${addr.toString(16)} is not ${align}-byte aligned`,
          { index, addr, align },
        );
      }
      if (addr + BigInt(bytes) > U64_LIMIT || !memory.isValidRange(GuestAddress.of(addr), bytes)) {
        throw new VirtQueueError(
          'RingOutsideMemory',
          `queue ${index}: ${what} [0x${addr.toString(16)}, +${bytes}) is outside guest memory`,
          { index, addr, bytes },
        );
      }
    }
    const usedBytes = BigInt(usedRingBytes(size));
    if (
      memory.regions.some(
        (r) => r.readOnly && r.range.start.value < this.usedRing + usedBytes && this.usedRing < r.range.end,
      )
    ) {
      throw new VirtQueueError(
        'ReadOnlyMemory',
        `queue ${index}: the used ring at 0x${this.usedRing.toString(16)} is in read-only memory`,
        { index, addr: this.usedRing },
      );
    }
  }

  /**
   * Starts serving a ready queue with the negotiated features (validates first).
   * A queue the driver left not ready stays inactive: pop() returns undefined.
   */
  activate(memory: GuestMemory, features: bigint, progress?: SplitQueueProgress): void {
    this.memory = undefined;
    if (!this.ready) return;
    this.validate(memory);
    this.eventIdx = (features & VIRTIO_F_RING_EVENT_IDX) !== 0n;
    this.indirect = (features & VIRTIO_F_RING_INDIRECT_DESC) !== 0n;
    this.nextAvail = progress?.nextAvail ?? 0;
    this.nextUsed = progress?.nextUsed ?? 0;
    this.signalledUsed = progress?.signalledUsed ?? this.nextUsed;
    this.rings = {
      desc: new RingView(memory, this.descTable, descTableBytes(this.size)),
      avail: new RingView(memory, this.availRing, availRingBytes(this.size)),
      used: new RingView(memory, this.usedRing, usedRingBytes(this.size), 'write'),
    };
    this.source = {
      memory,
      descTable: this.rings.desc,
      queueSize: this.size,
      indirect: this.indirect,
      spans: memorySpans(memory),
    };
    this.memory = memory;
  }

  /** Back to the power-on state (driver reset). */
  reset(): void {
    this.memory = undefined;
    this.rings = undefined;
    this.source = undefined;
    this.size = this.maxSize;
    this.ready = false;
    this.descTable = this.availRing = this.usedRing = 0n;
    this.eventIdx = this.indirect = false;
    this.nextAvail = this.nextUsed = this.signalledUsed = 0;
  }

  progress(): SplitQueueProgress {
    return { nextAvail: this.nextAvail, nextUsed: this.nextUsed, signalledUsed: this.signalledUsed };
  }

  pop(): DescriptorChain | undefined {
    if (!this.memory) return undefined;
    return this.guard(() => {
      const availIdx = this.rings!.avail.u16(2);
      const pending = (availIdx - this.nextAvail) & 0xffff;
      if (pending === 0) return undefined;
      if (pending > this.size) {
        throw new VirtQueueError(
          'InvalidAvailRingIndex',
          `queue ${this.index}: avail.idx ${availIdx} is ${pending} entries ahead of ${this.nextAvail}, more than the queue size ${this.size}`,
          { index: this.index, availIdx, nextAvail: this.nextAvail, size: this.size },
        );
      }
      // Chains popped and not yet returned. A driver has at most `size` descriptors, so more in use
      // means it re-posted a head the device still holds: refuse (QEMU: inuse >= num) rather than
      // let it start unbounded work with one descriptor.
      const inUse = (this.nextAvail - this.nextUsed) & 0xffff;
      if (inUse >= this.size) {
        throw new VirtQueueError(
          'QueueSizeExceeded',
          `queue ${this.index}: ${inUse} chains are in use (the queue size) and the driver made another available`,
          { index: this.index, inUse, size: this.size },
        );
      }
      const slot = this.nextAvail % this.size;
      const head = this.rings!.avail.u16(4 + 2 * slot);
      this.nextAvail = (this.nextAvail + 1) & 0xffff;
      return readChain(this.source!, head);
    });
  }

  addUsed(head: number, len: number): void {
    if (!this.memory) throw new VirtQueueError('NotReady', `queue ${this.index} is not active`, { index: this.index });
    if (!Number.isInteger(head) || head < 0 || head >= this.size) {
      throw new VirtQueueError(
        'InvalidDescriptorIndex',
        `queue ${this.index}: used head ${head} is not below the queue size ${this.size}`,
        { index: this.index, head },
      );
    }
    if (!Number.isInteger(len) || len < 0 || len > 0xffff_ffff) {
      throw new VirtQueueError('InvalidUsedLength', `queue ${this.index}: used length ${len} is not a u32`, {
        index: this.index,
        len,
      });
    }
    this.guard(() => {
      const slot = this.nextUsed % this.size;
      const used = this.rings!.used;
      const elem = 4 + USED_ELEM_SIZE * slot;
      used.setU32(elem, head);
      used.setU32(elem + 4, len);
      // The element is written before the index that publishes it (x86 keeps store order: smp_wmb is free).
      this.nextUsed = (this.nextUsed + 1) & 0xffff;
      used.setU16(2, this.nextUsed);
    });
  }

  needsNotification(): boolean {
    if (!this.memory) return false;
    return this.guard(() => {
      // used.idx (stored by addUsed) must be visible before the driver's wish is read.
      this.fence();
      const now = this.nextUsed;
      const old = this.signalledUsed;
      this.signalledUsed = now;
      if (this.eventIdx) {
        // vring_need_event(used_event, new, old), in wrapping u16 arithmetic.
        const usedEvent = this.rings!.avail.u16(4 + 2 * this.size);
        return ((now - usedEvent - 1) & 0xffff) < ((now - old) & 0xffff);
      }
      if (now === old) return false;
      return (this.rings!.avail.u16(0) & VRING_AVAIL_F_NO_INTERRUPT) === 0;
    });
  }

  enableNotification(): boolean {
    if (!this.memory) return false;
    return this.guard(() => {
      if (this.eventIdx) this.rings!.used.setU16(4 + USED_ELEM_SIZE * this.size, this.nextAvail);
      else this.rings!.used.setU16(0, 0);
      // The store above must be visible before avail.idx is read again, else a buffer added
      // meanwhile by a driver that still saw notifications off is missed and never kicked.
      this.fence();
      return this.rings!.avail.u16(2) !== this.nextAvail;
    });
  }

  disableNotification(): void {
    if (!this.memory || this.eventIdx) return; // with EVENT_IDX a stale avail_event suppresses kicks
    this.guard(() => this.rings!.used.setU16(0, VRING_USED_F_NO_NOTIFY));
  }

  /** Lets VirtQueueError through and wraps anything else (a memory error, a bug) so only VirtQueueError escapes. */
  private guard<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      if (err instanceof VirtQueueError) throw err;
      throw new VirtQueueError(
        'GuestMemory',
        `queue ${this.index}: ${(err as Error)?.message ?? String(err)}`,
        { index: this.index },
        { cause: err },
      );
    }
  }
}
