/**
 * Test doubles for virtio plugin authors:
 *  - MockSplitQueue plays the guest driver over a GuestMemory (like rust-vmm's
 *    MockSplitQueue): lays out the rings, adds direct or indirect chains, reads used entries;
 *  - FakeEventSystem: core/testing's eventfd and event-loop doubles bundled, run step by step;
 *  - memoryWithRom: guest memory with a read-only region, for device-write checks;
 *  - EchoDevice: a small VirtioDevice that copies each chain's readable bytes into its
 *    writable buffers, for transport tests.
 */
import { GuestAddress } from '../../core/address.js';
import type { Disposable } from '../../core/bus/bus.js';
import type { EventLoop } from '../../core/events/event-loop.js';
import type { GuestMemory } from '../../core/memory/guest-memory.js';
import { makeRegion, RegionGuestMemory } from '../../core/memory/region-guest-memory.js';
import {
  VIRTIO_F_RING_EVENT_IDX,
  VIRTIO_F_RING_INDIRECT_DESC,
  VIRTIO_F_VERSION_1,
  type VirtioActivation,
  type VirtioDevice,
} from '../../core/virtio/virtio.js';
import { FakeEventFdFactory, ManualEventLoop } from '../../core/testing/manual-event-loop.js';
import { ChainReader, ChainWriter } from './chain-io.js';
import {
  DESCRIPTOR_SIZE,
  VIRTQ_DESC_F_INDIRECT,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_WRITE,
  availRingBytes,
  usedRingBytes,
} from './constants.js';
import { VirtQueueError } from './errors.js';
import { drainQueue } from './queue-runner.js';
import type { SplitQueue } from './split-queue.js';

/** Heap-backed guest memory for unit tests (core's double, re-exported for convenience). */
export { testGuestMemory } from '../../core/testing/test-memory.js';

/** RAM [0, 1 MiB) plus a read-only region [1 MiB, 1 MiB + 64 KiB) filled with 0x5a (a ROM, say). */
export function memoryWithRom(): { mem: GuestMemory; rom: bigint } {
  const rom = 1n << 20n;
  const mem = new RegionGuestMemory([
    makeRegion(0n, new Uint8Array(1 << 20), 0n, { kind: 'heap' }),
    makeRegion(rom, new Uint8Array(0x10000).fill(0x5a), 0n, { kind: 'heap' }, true),
  ]);
  return { mem, rom };
}

/** Where memoryWithHighPage puts its last page: 2^60, far above 2^53 (only bigint addresses reach it). */
export const HIGH_PAGE = 1n << 60n;

/**
 * Heap memory of two adjacent RAM regions [0, split) and [split, end), and one 4 KiB page at HIGH_PAGE: for the
 * slow paths of chain walking and device views (a buffer across a region boundary, an address above 2^53).
 */
export function memoryWithHighPage(split: bigint, end: bigint): GuestMemory {
  return new RegionGuestMemory([
    makeRegion(0n, new Uint8Array(Number(split)), 0n, { kind: 'heap' }),
    makeRegion(split, new Uint8Array(Number(end - split)), 0n, { kind: 'heap' }),
    makeRegion(HIGH_PAGE, new Uint8Array(0x1000), 0n, { kind: 'heap' }),
  ]);
}

/** One descriptor table entry as the mock driver writes it (hostile tests write any values). */
export interface RawDescriptor {
  addr: bigint;
  len: number;
  flags: number;
  next: number;
}
/** A buffer of a chain the mock driver adds; `write` = device-writable. */
export interface MockBuffer {
  addr: bigint;
  len: number;
  write?: boolean;
}
/** One used ring element the device returned: the chain head and the bytes written. */
export interface UsedElem {
  id: number;
  len: number;
}

const a = (v: bigint): GuestAddress => GuestAddress.of(v);

/**
 * The driver side of a split virtqueue. Rings are laid out from `base`:
 * descriptor table, available ring (with used_event), used ring (with avail_event)
 * aligned to 4; `alloc()` hands out data buffers after them.
 */
export class MockSplitQueue {
  readonly descTable: bigint;
  readonly availRing: bigint;
  readonly usedRing: bigint;
  /** First byte after the rings. */
  readonly end: bigint;
  private nextDesc = 0;
  private availIdx = 0;
  private lastUsed = 0;
  private dataNext: bigint;

  constructor(
    readonly memory: GuestMemory,
    readonly size: number,
    base = 0x1000n,
  ) {
    this.descTable = (base + 15n) & ~15n;
    this.availRing = this.descTable + BigInt(DESCRIPTOR_SIZE * size);
    this.usedRing = (this.availRing + BigInt(availRingBytes(size)) + 3n) & ~3n;
    this.end = this.usedRing + BigInt(usedRingBytes(size));
    this.dataNext = (this.end + 0xfffn) & ~0xfffn;
    memory.fill(a(this.descTable), Number(this.end - this.descTable), 0);
  }

  /** Points a device-side queue at these rings and marks it ready (what the transport registers do). */
  configure(q: SplitQueue): void {
    q.size = this.size;
    q.descTable = this.descTable;
    q.availRing = this.availRing;
    q.usedRing = this.usedRing;
    q.ready = true;
  }

  /** A fresh buffer of `len` bytes in guest memory (bump allocator, 16-byte aligned). */
  alloc(len: number, fill?: Uint8Array): bigint {
    const at = this.dataNext;
    this.dataNext = (at + BigInt(len) + 15n) & ~15n;
    if (fill) this.memory.write(a(at), fill.subarray(0, len));
    return at;
  }

  writeDescriptor(table: bigint, index: number, d: RawDescriptor): void {
    const b = new Uint8Array(16);
    const dv = new DataView(b.buffer);
    dv.setBigUint64(0, BigInt.asUintN(64, d.addr), true);
    dv.setUint32(8, d.len >>> 0, true);
    dv.setUint16(12, d.flags & 0xffff, true);
    dv.setUint16(14, d.next & 0xffff, true);
    this.memory.write(a(table + BigInt(16 * index)), b);
  }

  private takeDesc(): number {
    const i = this.nextDesc;
    this.nextDesc = (this.nextDesc + 1) % this.size;
    return i;
  }

  /** Writes a direct chain into free table slots and publishes it; returns its head. */
  addChain(buffers: readonly MockBuffer[]): number {
    if (buffers.length === 0 || buffers.length > this.size) throw new Error(`a chain needs 1..${this.size} buffers`);
    const idx = buffers.map(() => this.takeDesc());
    buffers.forEach((b, i) =>
      this.writeDescriptor(this.descTable, idx[i], {
        addr: b.addr,
        len: b.len,
        flags: (b.write ? VIRTQ_DESC_F_WRITE : 0) | (i + 1 < buffers.length ? VIRTQ_DESC_F_NEXT : 0),
        next: i + 1 < buffers.length ? idx[i + 1] : 0,
      }),
    );
    this.publish(idx[0]);
    return idx[0];
  }

  /** Writes `buffers` as an indirect table (at `tableAddr`, or fresh) behind one descriptor; returns the head. */
  addIndirectChain(buffers: readonly MockBuffer[], tableAddr?: bigint): number {
    const table = tableAddr ?? this.alloc(16 * buffers.length);
    buffers.forEach((b, i) =>
      this.writeDescriptor(table, i, {
        addr: b.addr,
        len: b.len,
        flags: (b.write ? VIRTQ_DESC_F_WRITE : 0) | (i + 1 < buffers.length ? VIRTQ_DESC_F_NEXT : 0),
        next: i + 1 < buffers.length ? i + 1 : 0,
      }),
    );
    const head = this.takeDesc();
    this.writeDescriptor(this.descTable, head, {
      addr: table,
      len: 16 * buffers.length,
      flags: VIRTQ_DESC_F_INDIRECT,
      next: 0,
    });
    this.publish(head);
    return head;
  }

  /** Puts `head` in the next available slot and bumps avail.idx. */
  publish(head: number): void {
    this.memory.writeU16(a(this.availRing + 4n + BigInt(2 * (this.availIdx % this.size))), head);
    this.availIdx = (this.availIdx + 1) & 0xffff;
    this.memory.writeU16(a(this.availRing + 2n), this.availIdx);
  }

  /**
   * Starts both rings at index `idx` (as after a long run, e.g. to test 16-bit wrap);
   * pair with `SplitQueue.activate(mem, features, { nextAvail: idx, nextUsed: idx, signalledUsed: idx })`.
   */
  startAt(idx: number): void {
    this.availIdx = this.lastUsed = idx & 0xffff;
    this.memory.writeU16(a(this.availRing + 2n), this.availIdx);
    this.memory.writeU16(a(this.usedRing + 2n), this.availIdx);
  }

  /** Raw avail.idx write (hostile tests). */
  setAvailIdx(idx: number): void {
    this.availIdx = idx & 0xffff;
    this.memory.writeU16(a(this.availRing + 2n), this.availIdx);
  }
  setAvailFlags(flags: number): void {
    this.memory.writeU16(a(this.availRing), flags);
  }
  /** used_event (EVENT_IDX): interrupt me when used.idx passes this. */
  setUsedEvent(v: number): void {
    this.memory.writeU16(a(this.availRing + 4n + BigInt(2 * this.size)), v);
  }

  get usedIdx(): number {
    return this.memory.readU16(a(this.usedRing + 2n));
  }
  get usedFlags(): number {
    return this.memory.readU16(a(this.usedRing));
  }
  /** avail_event (EVENT_IDX): the device wants a kick when avail.idx passes this. */
  get availEvent(): number {
    return this.memory.readU16(a(this.usedRing + 4n + BigInt(8 * this.size)));
  }

  /** Used elements added since the last call. */
  readUsed(): UsedElem[] {
    const out: UsedElem[] = [];
    const idx = this.usedIdx;
    while (this.lastUsed !== idx) {
      const at = this.usedRing + 4n + BigInt(8 * (this.lastUsed % this.size));
      out.push({ id: this.memory.readU32(a(at)), len: this.memory.readU32(a(at + 4n)) });
      this.lastUsed = (this.lastUsed + 1) & 0xffff;
    }
    return out;
  }
}

/**
 * Eventfds and an EventLoop in memory (core/testing's FakeEventFdFactory and
 * ManualEventLoop bundled): `run()` calls the watchers of every fd with a pending
 * count until nothing is pending (bounded), like turns of libuv; exceptions in
 * callbacks go to onError listeners and `errors`, never escape.
 */
export class FakeEventSystem {
  readonly loop = new ManualEventLoop();
  readonly factory = new FakeEventFdFactory(this.loop);
  get errors(): unknown[] {
    return this.loop.errors.map((e) => e.err);
  }
  /** Number of fds with watchers. */
  get watched(): number {
    return this.loop.watchedFds.length;
  }
  run(maxRounds = 100): number {
    return this.loop.flush(maxRounds);
  }
}

/** EchoDevice's device type id (unassigned by the spec). */
export const ECHO_DEVICE_TYPE = 0x7e;

/**
 * A minimal VirtioDevice for transport tests: one queue; each chain's readable
 * bytes are copied into its writable buffers (as much as fits) and the chain is
 * returned with that length. Config space: 8 bytes (u32 chains echoed, u32 scratch
 * the driver may write). A broken chain makes it call needsReset().
 */
export class EchoDevice implements VirtioDevice {
  readonly deviceType: number;
  readonly queueMaxSizes: readonly number[];
  readonly deviceFeatures: bigint;
  readonly configSize = 8;
  readonly config = new Uint8Array(8);
  activation: VirtioActivation | undefined;
  activations = 0;
  resets = 0;
  echoed = 0;
  private watches: Disposable[] = [];

  constructor(
    readonly id: string,
    private readonly loop: EventLoop,
    opts: { queueSize?: number; features?: bigint; deviceType?: number } = {},
  ) {
    this.deviceType = opts.deviceType ?? ECHO_DEVICE_TYPE;
    this.queueMaxSizes = [opts.queueSize ?? 16];
    this.deviceFeatures = opts.features ?? VIRTIO_F_VERSION_1 | VIRTIO_F_RING_INDIRECT_DESC | VIRTIO_F_RING_EVENT_IDX;
  }

  readConfig(offset: number, data: Uint8Array): void {
    new DataView(this.config.buffer).setUint32(0, this.echoed, true);
    data.set(this.config.subarray(offset, offset + data.length));
  }

  writeConfig(offset: number, data: Uint8Array): void {
    if (offset >= 4 && offset + data.length <= 8) this.config.set(data, offset);
  }

  activate(act: VirtioActivation): void {
    this.activation = act;
    this.activations++;
    act.queueEvents.forEach((ev, i) => {
      this.watches.push(
        this.loop.watch(ev.fd, { readable: true }, () => {
          ev.read();
          this.process(i);
        }),
      );
    });
  }

  /** Serves queue `i` now (also what a queue notification does). */
  process(i = 0): void {
    const act = this.activation;
    if (!act) return;
    try {
      drainQueue(
        act.queues[i],
        (chain) => {
          const data = new ChainReader(act.memory, chain).read(chain.readableLength);
          const w = new ChainWriter(act.memory, chain);
          w.write(data.subarray(0, Math.min(data.length, chain.writableLength)));
          this.echoed++;
          return w.written;
        },
        act.interrupt,
      );
    } catch (err) {
      if (!(err instanceof VirtQueueError)) throw err;
      this.stop();
      act.needsReset(err.message);
    }
  }

  private stop(): void {
    for (const w of this.watches) w.dispose();
    this.watches = [];
    this.activation = undefined;
  }

  reset(): void {
    this.resets++;
    this.stop();
  }
}
