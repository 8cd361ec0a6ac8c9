import { GuestAddress } from '../../core/address.js';
import type { EventFd, EventFdFactory } from '../../core/events/event-loop.js';
import type { Logger } from '../../core/logger.js';
import { createMemfdMemory } from '../../core/memory/backends/memfd.js';
import type { GuestMemory } from '../../core/memory/guest-memory.js';
import { LogRateLimiter, suppressedNote } from '../../core/ratelimit/log-limiter.js';
import type { VirtQueue } from '../../core/virtio/virtio.js';
import { fullFence } from '../virtio/fence.js';
import type { MemRegion } from './protocol.js';

/**
 * Shadow virtqueues: what keeps a restart of a vhost-user back end lossless when the back end cannot
 * track its in-flight requests (no INFLIGHT_SHMFD; qemu-storage-daemon and virtiofsd of QEMU 7.2).
 *
 * Without them a restarted back end starts at the used index in guest memory. A back end finishes
 * requests out of order (qemu-storage-daemon's I/O runs in threads), so requests taken before some that
 * already finished are lost (the driver waits for them for ever) and finished ones are done again
 * (the driver sees a head twice and marks the device broken). The front end cannot tell which is which
 * from the guest's rings: an old request's slot in the available ring may have been overwritten.
 *
 * So the back end gets rings of ours (in a memfd region added to its memory table) and the guest's
 * descriptor table: the front end moves the heads the driver makes available into our available ring
 * (and notes them as in flight), and the back end's completions from our used ring into the guest's,
 * raising the guest's interrupt by the guest's own rules (EVENT_IDX). On a restart our rings are rebuilt
 * from exactly the requests still in flight, in the order the driver made them available. The data
 * path (descriptors, buffers) stays with the back end; the cost is one pass through this process per
 * notification each way. QEMU's "shadow virtqueue" for vDPA works the same way. Written by hand: no
 * library does this.
 */

const PAGE = 4096n;
const VRING_USED_ELEM = 8;

/** Bytes of our rings for one queue: available ring, then the used ring (4-byte aligned), page-rounded. */
function ringBytes(size: number): bigint {
  const avail = BigInt(4 + 2 * size + 2);
  const used = BigInt(4 + VRING_USED_ELEM * size + 2);
  return ((((avail + 3n) & ~3n) + used + PAGE - 1n) / PAGE) * PAGE;
}

/** Shadow rings of every queue of one device, in one memfd region the back end maps. */
export class ShadowRings {
  private readonly memory: GuestMemory;
  private readonly offsets: bigint[] = [];
  /** Where the region sits in the back end's guest-physical view (above guest RAM). */
  readonly base: bigint;

  constructor(
    guest: GuestMemory,
    private readonly sizes: readonly number[],
  ) {
    let top = 0n;
    for (const r of guest.regions) if (r.range.end > top) top = r.range.end;
    // above guest RAM, 1 GiB aligned: a driver's descriptors never point there unless it is hostile, and
    // then it only confuses its own device (completions are checked against what is in flight)
    this.base = ((top + (1n << 30n) - 1n) >> 30n) << 30n;
    let total = 0n;
    for (const s of sizes) {
      this.offsets.push(total);
      total += ringBytes(s);
    }
    this.memory = createMemfdMemory({ regions: [{ start: this.base, size: total }], backend: 'memfd' });
  }

  /** The region for SET_MEM_TABLE. */
  get region(): MemRegion {
    const r = this.memory.regions[0];
    if (r.backing.kind !== 'memfd') throw new Error('shadow rings: not in a memfd');
    return {
      guestPhysAddr: r.range.start.value,
      size: r.range.length,
      userAddr: r.hostAddress,
      mmapOffset: r.backing.offset,
      fd: r.backing.fd,
    };
  }

  /** Our available and used ring of queue `i` (guest-physical addresses in the back end's view). */
  rings(i: number): { avail: bigint; used: bigint; size: number } {
    const size = this.sizes[i];
    const avail = this.base + this.offsets[i];
    return { avail, used: avail + ((BigInt(4 + 2 * size + 2) + 3n) & ~3n), size };
  }

  /** Reads and writes our rings. */
  get mem(): GuestMemory {
    return this.memory;
  }

  close(): void {
    this.memory.close();
  }
}

/** What one shadowed queue works with. */
export interface ShadowQueueOptions {
  readonly rings: ShadowRings;
  readonly index: number;
  /** The guest's queue (the transport's SplitQueue): heads are taken from it and returned to it. */
  readonly guest: VirtQueue;
  readonly eventFds: EventFdFactory;
  /** Raises the guest's interrupt for this queue. */
  readonly signal: () => void;
  /** The driver broke the rules (a bad chain): the device needs a reset. */
  readonly needsReset: (why: string) => void;
  readonly logger?: Logger;
}

/** One queue between the guest's rings and ours (see the module comment). */
export class ShadowQueue {
  /** The back end's kick eventfd (we write it) and call eventfd (it writes, we read). */
  readonly kick: EventFd;
  readonly call: EventFd;
  private readonly avail: bigint;
  private readonly used: bigint;
  private readonly size: number;
  /** Heads the back end has and has not finished, in the order the driver made them available. */
  private readonly inFlight: number[] = [];
  private shadowAvail = 0;
  private shadowUsed = 0;
  private readonly logLimit = new LogRateLimiter();
  private broken = false;

  constructor(private readonly o: ShadowQueueOptions) {
    const r = o.rings.rings(o.index);
    this.avail = r.avail;
    this.used = r.used;
    this.size = r.size;
    this.kick = o.eventFds.create();
    this.call = o.eventFds.create();
  }

  /**
   * Before a back end (re)starts on our rings: moves what the last one finished to the guest, then
   * rebuilds our rings from the requests still in flight. Returns the base for SET_VRING_BASE (0).
   */
  restart(): number {
    this.drainUsed();
    this.takeFromGuest(); // made available while no back end was there to be kicked
    const m = this.o.rings.mem;
    this.shadowAvail = 0;
    this.shadowUsed = 0;
    m.writeU16(this.at(this.used), 0); // used flags
    m.writeU16(this.at(this.used + 2n), 0); // used idx
    m.writeU16(this.at(this.avail), 0); // avail flags: interrupt us for every completion
    for (const head of this.inFlight) this.post(head);
    this.publishAvail();
    return 0;
  }

  /** The guest kicked: moves what it made available to our ring and kicks the back end. */
  onGuestKick(): void {
    if (this.takeFromGuest() === 0) return;
    this.publishAvail();
    this.kick.write(1n);
  }

  /** Moves the heads the driver made available to our ring (not yet published); returns how many. */
  private takeFromGuest(): number {
    if (this.broken) return 0;
    let moved = 0;
    try {
      for (;;) {
        for (let chain = this.o.guest.pop(); chain; chain = this.o.guest.pop()) {
          this.inFlight.push(chain.head);
          this.post(chain.head);
          moved++;
        }
        if (!this.o.guest.enableNotification()) break; // nothing arrived while notifications were off
      }
    } catch (err) {
      this.broken = true;
      this.o.needsReset(`queue ${this.o.index}: ${(err as Error)?.message ?? String(err)}`);
    }
    return moved;
  }

  /** The back end called: moves its completions to the guest's used ring and interrupts the guest if it asks. */
  onBackendCall(): void {
    if (this.drainUsed() > 0 && this.o.guest.needsNotification()) this.o.signal();
  }

  /** Moves the back end's completions to the guest; returns how many. */
  private drainUsed(): number {
    const m = this.o.rings.mem;
    const idx = m.readU16(this.at(this.used + 2n));
    let n = 0;
    while (this.shadowUsed !== idx) {
      const elem = this.used + 4n + BigInt(VRING_USED_ELEM * (this.shadowUsed % this.size));
      const head = m.readU32(this.at(elem));
      const len = m.readU32(this.at(elem + 4n));
      this.shadowUsed = (this.shadowUsed + 1) & 0xffff;
      const k = this.inFlight.indexOf(head);
      if (k < 0) {
        this.logLimit.log('stray', (dropped) =>
          this.o.logger?.warn(
            { queue: this.o.index, head },
            `vhost-user back end finished a request it did not have; ignored${suppressedNote(dropped)}`,
          ),
        );
        continue;
      }
      this.inFlight.splice(k, 1);
      if (this.broken) continue;
      try {
        this.o.guest.addUsed(head, len);
      } catch (err) {
        this.broken = true;
        this.o.needsReset(`queue ${this.o.index}: ${(err as Error)?.message ?? String(err)}`);
        continue;
      }
      n++;
    }
    return n;
  }

  private post(head: number): void {
    const m = this.o.rings.mem;
    m.writeU16(this.at(this.avail + 4n + BigInt(2 * (this.shadowAvail % this.size))), head);
    this.shadowAvail = (this.shadowAvail + 1) & 0xffff;
  }

  private publishAvail(): void {
    // the ring slots are written before the index that publishes them (x86 keeps store order); the
    // back end runs in another process, so a full fence before it can be kicked keeps this plain
    this.o.rings.mem.writeU16(this.at(this.avail + 2n), this.shadowAvail);
    fullFence();
  }

  private at(v: bigint): GuestAddress {
    return GuestAddress.of(v);
  }

  /** Closes the eventfds. */
  close(): void {
    this.kick.close();
    this.call.close();
  }
}
