/**
 * Test helpers for virtio-blk: a driver that builds block requests on a
 * MockSplitQueue (plugins/virtio/testing.ts) and reads back status and data, and
 * `activateBlk` that wires a VirtioBlk to split queues, fake eventfds and spies.
 */
import { GuestAddress } from '../../core/address.js';
import type { GuestMemory } from '../../core/memory/guest-memory.js';
import type { VirtioInterrupt } from '../../core/virtio/virtio.js';
import { SplitQueue } from '../virtio/split-queue.js';
import { FakeEventSystem, MockSplitQueue, type MockBuffer, testGuestMemory } from '../virtio/testing.js';
import { BlkRequestType, DISCARD_SEGMENT_SIZE, REQUEST_HEADER_SIZE } from './constants.js';
import type { VirtioBlk } from './device.js';

/** A request placed in guest memory by a test driver: its head descriptor, where the status byte and the data are. */
export interface BuiltRequest {
  head: number;
  status: bigint;
  data?: bigint;
  dataLen: number;
}

/** How a test driver lays a request out in descriptors (including hostile layouts). */
export interface RequestShape {
  /** Device-readable payload after the header (write data, discard segments). */
  out?: Uint8Array;
  /** Device-writable bytes before the status byte (read data, GET_ID). */
  inLen?: number;
  /** Put the header and `out` in one descriptor (any-layout). */
  merged?: boolean;
  /** Split `out` / `inLen` in two descriptors. */
  split?: boolean;
  /** Send as an indirect table. */
  indirect?: boolean;
  /** Leave out the status byte (hostile). */
  noStatus?: boolean;
  /** Override the header length (hostile: short header). */
  headerLen?: number;
}

/** A virtio_blk_req header (type, sector) as bytes. */
export function header(type: number, sector: bigint): Uint8Array {
  const b = new Uint8Array(REQUEST_HEADER_SIZE);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, type, true);
  dv.setBigUint64(8, BigInt.asUintN(64, sector), true);
  return b;
}

/** Discard/write-zeroes segments as the bytes a DISCARD or WRITE_ZEROES request carries. */
export function segments(list: { sector: bigint; num: number; flags?: number }[]): Uint8Array {
  const b = new Uint8Array(DISCARD_SEGMENT_SIZE * list.length);
  const dv = new DataView(b.buffer);
  list.forEach((s, i) => {
    dv.setBigUint64(i * 16, BigInt.asUintN(64, s.sector), true);
    dv.setUint32(i * 16 + 8, s.num >>> 0, true);
    dv.setUint32(i * 16 + 12, (s.flags ?? 0) >>> 0, true);
  });
  return b;
}

/** The guest driver side of one virtio-blk queue. */
export class BlkTestDriver {
  constructor(readonly mq: MockSplitQueue) {}
  get memory(): GuestMemory {
    return this.mq.memory;
  }

  request(type: number, sector: bigint, shape: RequestShape = {}): BuiltRequest {
    const bufs: MockBuffer[] = [];
    const hdr = header(type, sector).subarray(0, shape.headerLen ?? REQUEST_HEADER_SIZE);
    const out = shape.out ?? new Uint8Array(0);
    if (shape.merged) {
      const both = new Uint8Array(hdr.length + out.length);
      both.set(hdr);
      both.set(out, hdr.length);
      bufs.push({ addr: this.mq.alloc(both.length, both), len: both.length });
    } else {
      bufs.push({ addr: this.mq.alloc(hdr.length, hdr), len: hdr.length });
      if (out.length > 0) {
        const cut = shape.split ? Math.floor(out.length / 3) : out.length;
        bufs.push({ addr: this.mq.alloc(cut, out.subarray(0, cut)), len: cut });
        if (cut < out.length)
          bufs.push({ addr: this.mq.alloc(out.length - cut, out.subarray(cut)), len: out.length - cut });
      }
    }
    const inLen = shape.inLen ?? 0;
    let data: bigint | undefined;
    if (inLen > 0) {
      data = this.mq.alloc(inLen);
      this.memory.fill(GuestAddress.of(data), inLen, 0xee);
      const cut = shape.split ? Math.floor(inLen / 3) : inLen;
      bufs.push({ addr: data, len: cut, write: true });
      if (cut < inLen) bufs.push({ addr: data + BigInt(cut), len: inLen - cut, write: true });
    }
    const status = this.mq.alloc(1);
    this.memory.writeU8(GuestAddress.of(status), 0xff);
    if (!shape.noStatus) bufs.push({ addr: status, len: 1, write: true });
    const head = shape.indirect ? this.mq.addIndirectChain(bufs) : this.mq.addChain(bufs);
    return { head, status, data, dataLen: inLen };
  }

  read(sector: bigint, len: number, shape: RequestShape = {}): BuiltRequest {
    return this.request(BlkRequestType.IN, sector, { ...shape, inLen: len });
  }
  write(sector: bigint, data: Uint8Array, shape: RequestShape = {}): BuiltRequest {
    return this.request(BlkRequestType.OUT, sector, { ...shape, out: data });
  }

  status(r: BuiltRequest): number {
    return this.memory.readU8(GuestAddress.of(r.status));
  }
  data(r: BuiltRequest): Uint8Array {
    return r.data === undefined ? new Uint8Array(0) : this.memory.read(GuestAddress.of(r.data), r.dataLen);
  }
}

/**
 * A virtio-blk device activated by activateBlk: its memory, fake event loop, a test driver per queue, and what the
 * device signalled (interrupts, resets).
 */
export interface ActivatedBlk {
  memory: GuestMemory;
  events: FakeEventSystem;
  drivers: BlkTestDriver[];
  queues: SplitQueue[];
  interrupts: number[];
  resets: string[];
  /** Notifies queue `i` (ioeventfd write) and runs the fake loop. */
  kick(i?: number): void;
}

/**
 * Activates `dev` with `features` (default: everything it offers) on split queues of
 * `queueSize` (64) entries laid out 1 MiB apart in fresh heap guest memory (or `memory`,
 * which must hold n + 1 MiB: a fuzz target passes a watched memory).
 */
export function activateBlk(
  dev: VirtioBlk,
  events: FakeEventSystem,
  opts: { features?: bigint; queueSize?: number; queues?: number; memory?: GuestMemory } = {},
): ActivatedBlk {
  const n = opts.queues ?? dev.queueMaxSizes.length;
  const size = opts.queueSize ?? 64;
  const memory = opts.memory ?? testGuestMemory(BigInt(n + 1) << 20n);
  const features = opts.features ?? dev.deviceFeatures;
  const queues: SplitQueue[] = [];
  const drivers: BlkTestDriver[] = [];
  for (let i = 0; i < n; i++) {
    const q = new SplitQueue(i, dev.queueMaxSizes[i]);
    const mq = new MockSplitQueue(memory, size, (BigInt(i) << 20n) | 0x1000n);
    mq.configure(q);
    q.activate(memory, features);
    queues.push(q);
    drivers.push(new BlkTestDriver(mq));
  }
  const interrupts: number[] = [];
  const resets: string[] = [];
  const interrupt: VirtioInterrupt = { signalUsedQueue: (i) => interrupts.push(i), signalConfigChange: () => {} };
  const queueEvents = queues.map(() => events.factory.create({ nonBlocking: true }));
  dev.activate({ features, memory, queues, queueEvents, interrupt, needsReset: (r) => resets.push(r) });
  return {
    memory,
    events,
    drivers,
    queues,
    interrupts,
    resets,
    kick: (i = 0) => {
      queueEvents[i].write(1n);
      events.run();
    },
  };
}
