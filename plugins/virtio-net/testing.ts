/**
 * Test helpers for virtio-net:
 *  - MemoryNetBackend: an in-memory NetBackend double (frames injected / recorded, failures on demand)
 *    whose fake fds become readable on a ManualEventLoop;
 *  - NetTestDriver: the guest driver side over MockSplitQueues (RX buffers, TX frames, control commands);
 *  - activateNet: wires a VirtioNet to split queues, fake eventfds and spies;
 *  - frame builders (Ethernet, ARP, IPv4/ICMP echo) for backend and end-to-end tests.
 */
import { GuestAddress } from '../../core/address.js';
import type { GuestMemory } from '../../core/memory/guest-memory.js';
import type { EventFdFactory } from '../../core/events/event-loop.js';
import type { ManualEventLoop } from '../../core/testing/manual-event-loop.js';
import type { VirtioInterrupt } from '../../core/virtio/virtio.js';
import { SplitQueue } from '../virtio/split-queue.js';
import { MockSplitQueue, testGuestMemory } from '../virtio/testing.js';
import { NO_OFFLOADS, type BackendOffloads, type GuestOffloads, type NetBackend } from './backends/backend.js';
import { NetBackendError } from './backends/errors.js';
import { VNET_HDR_SIZE } from './constants.js';
import { decodeHeader, encodeHeader, emptyHeader, type VnetHeader } from './header.js';
import type { VirtioNet } from './device.js';

let nextFakeFd = 900_000;

/** The offloads of a backend that accepts and delivers everything (tap-like; no guest UFO), for tests. */
export const FULL_OFFLOADS: BackendOffloads = {
  host: { csum: true, tso4: true, tso6: true, ecn: true, ufo: true },
  guest: { csum: true, tso4: true, tso6: true, ecn: true, ufo: false },
};

/** A NetBackend in memory. Frames sent are recorded; frames injected are delivered on recv. */
export class MemoryNetBackend implements NetBackend {
  readonly kind = 'memory';
  readonly description = 'memory';
  readonly queuePairs: number;
  readonly vnetHeader: boolean;
  readonly offloads: BackendOffloads;
  readonly sent: { queue: number; frame: Uint8Array }[] = [];
  readonly inbox: Uint8Array[][];
  readonly fds: number[];
  guestOffloads?: GuestOffloads;
  activePairs?: number;
  closed = false;
  /** Sends accepted before send() returns false (no room). */
  sendRoom = Infinity;
  /** Thrown by the next send / recv calls while set. */
  sendError?: NetBackendError;
  recvError?: NetBackendError;

  constructor(
    private readonly loop?: ManualEventLoop,
    o: { queuePairs?: number; vnetHeader?: boolean; offloads?: BackendOffloads } = {},
  ) {
    this.queuePairs = o.queuePairs ?? 1;
    this.vnetHeader = o.vnetHeader ?? true;
    this.offloads = o.offloads ?? (this.vnetHeader ? FULL_OFFLOADS : NO_OFFLOADS);
    this.inbox = Array.from({ length: this.queuePairs }, () => []);
    this.fds = Array.from({ length: this.queuePairs }, () => nextFakeFd++);
  }

  /** Queues a frame for the device to read (header included when vnetHeader); marks the fd readable. */
  inject(frame: Uint8Array, queue = 0): void {
    this.inbox[queue].push(frame.slice());
    this.loop?.readable.add(this.fds[queue]);
  }

  fd(queue: number): number {
    return this.fds[queue] ?? -1;
  }

  send(queue: number, frame: Uint8Array): boolean {
    if (this.closed) throw new NetBackendError('Closed', 'memory backend closed', {});
    if (this.sendError) throw this.sendError;
    if (this.sendRoom <= 0) return false;
    this.sendRoom--;
    this.sent.push({ queue, frame: frame.slice() });
    return true;
  }

  recv(queue: number, buf: Uint8Array): number {
    if (this.closed) throw new NetBackendError('Closed', 'memory backend closed', {});
    if (this.recvError) throw this.recvError;
    const f = this.inbox[queue]?.shift();
    if (!f) return -1;
    buf.set(f.subarray(0, Math.min(f.length, buf.length)));
    if (this.inbox[queue].length > 0) this.loop?.readable.add(this.fds[queue]);
    return f.length;
  }

  setGuestOffloads(o: GuestOffloads): void {
    this.guestOffloads = { ...o };
  }
  setActiveQueuePairs(n: number): void {
    this.activePairs = n;
  }
  close(): void {
    this.closed = true;
  }
}

/** Header + frame as the guest / a vnet-header backend sees them. */
export function withHeader(frame: Uint8Array, h: Partial<VnetHeader> = {}): Uint8Array {
  const out = new Uint8Array(VNET_HDR_SIZE + frame.length);
  encodeHeader({ ...emptyHeader(), ...h }, out);
  out.set(frame, VNET_HDR_SIZE);
  return out;
}

/**
 * A frame a test driver took off an rx queue: the virtio-net header, the frame after it, how many buffers it used and
 * their head descriptors.
 */
export interface RxFrame {
  header: VnetHeader;
  frame: Uint8Array;
  buffers: number;
  heads: number[];
}

/** The guest driver side of a virtio-net device's queues. */
export class NetTestDriver {
  private readonly rxBuffers = new Map<string, bigint>();
  constructor(
    readonly queues: MockSplitQueue[],
    readonly memory: GuestMemory,
  ) {}

  private mq(i: number): MockSplitQueue {
    return this.queues[i];
  }

  /** Adds `count` RX chains of one `size`-byte writable buffer each to RX queue of `pair`. */
  addRxBuffers(count: number, size: number, pair = 0): number[] {
    const q = this.mq(2 * pair);
    const heads: number[] = [];
    for (let i = 0; i < count; i++) {
      const addr = q.alloc(size);
      const head = q.addChain([{ addr, len: size, write: true }]);
      this.rxBuffers.set(`${pair}:${head}`, addr);
      heads.push(head);
    }
    return heads;
  }

  /** Frames delivered on RX queue of `pair` since the last call (mergeable buffers joined by num_buffers). */
  readRx(pair = 0): RxFrame[] {
    const used = this.mq(2 * pair).readUsed();
    const out: RxFrame[] = [];
    for (let i = 0; i < used.length;) {
      const first = used[i];
      const bytes = (u: { id: number; len: number }): Uint8Array =>
        this.memory.read(GuestAddress.of(this.rxBuffers.get(`${pair}:${u.id}`)!), u.len);
      const b0 = bytes(first);
      if (first.len < VNET_HDR_SIZE) {
        out.push({ header: emptyHeader(), frame: new Uint8Array(0), buffers: 0, heads: [first.id] });
        i++;
        continue;
      }
      const header = decodeHeader(b0);
      const n = Math.max(1, header.numBuffers);
      const parts = [b0.subarray(VNET_HDR_SIZE)];
      const heads = [first.id];
      for (let k = 1; k < n && i + k < used.length; k++) {
        parts.push(bytes(used[i + k]));
        heads.push(used[i + k].id);
      }
      out.push({ header, frame: Buffer.concat(parts), buffers: n, heads });
      i += n;
    }
    return out;
  }

  /** Puts header + frame on TX queue of `pair` (header and frame in separate descriptors unless `oneBuffer`). */
  sendTx(frameWithHeader: Uint8Array, pair = 0, o: { oneBuffer?: boolean; indirect?: boolean } = {}): number {
    const q = this.mq(2 * pair + 1);
    const bufs =
      o.oneBuffer || frameWithHeader.length <= VNET_HDR_SIZE
        ? [{ addr: q.alloc(frameWithHeader.length, frameWithHeader), len: frameWithHeader.length }]
        : [
            { addr: q.alloc(VNET_HDR_SIZE, frameWithHeader.subarray(0, VNET_HDR_SIZE)), len: VNET_HDR_SIZE },
            {
              addr: q.alloc(frameWithHeader.length - VNET_HDR_SIZE, frameWithHeader.subarray(VNET_HDR_SIZE)),
              len: frameWithHeader.length - VNET_HDR_SIZE,
            },
          ];
    return o.indirect ? q.addIndirectChain(bufs) : q.addChain(bufs);
  }

  /** Sends a control command; returns the ack byte's guest address (0xee until answered). */
  ctrl(
    ctrlQueue: number,
    cls: number,
    cmd: number,
    data: Uint8Array = new Uint8Array(0),
    o: { noAck?: boolean } = {},
  ): bigint {
    const q = this.mq(ctrlQueue);
    const hdr = Uint8Array.of(cls, cmd);
    const ack = q.alloc(1);
    this.memory.writeU8(GuestAddress.of(ack), 0xee);
    const bufs = [{ addr: q.alloc(2, hdr), len: 2 }];
    if (data.length) bufs.push({ addr: q.alloc(data.length, data), len: data.length });
    if (!o.noAck) bufs.push({ addr: ack, len: 1, write: true } as never);
    q.addChain(bufs);
    return ack;
  }

  ack(addr: bigint): number {
    return this.memory.readU8(GuestAddress.of(addr));
  }
}

/**
 * A virtio-net device activated for a test: its memory, fake event loop, driver, queues and what the device signalled
 * (interrupts, config changes, resets).
 */
export interface ActivatedNet {
  memory: GuestMemory;
  events: NetTestEvents;
  driver: NetTestDriver;
  queues: SplitQueue[];
  mqs: MockSplitQueue[];
  interrupts: number[];
  configChanges: number;
  resets: string[];
  /** Index of the control queue. */
  ctrlQueue: number;
  /** Notifies queue `i` (ioeventfd write) and runs the fake loop. */
  kick(i: number): void;
  /** Runs the fake loop (backend readiness, pending kicks). */
  run(): void;
}

/**
 * Where activateNet gets the queue eventfds and how it runs the loop after a kick: a FakeEventSystem, or real
 * eventfds on a real loop (`run` then does nothing: libuv delivers the kicks).
 */
export interface NetTestEvents {
  readonly factory: EventFdFactory;
  run(): unknown;
}

/**
 * Activates `dev` with `features` (default: all it offers) on queues of `queueSize` (64) entries, 4 MiB apart,
 * in fresh heap guest memory (or `memory`, which must hold (n + 1) * 4 MiB: a fuzz target passes a watched memory).
 */
export function activateNet(
  dev: VirtioNet,
  events: NetTestEvents,
  o: { features?: bigint; queueSize?: number; memory?: GuestMemory } = {},
): ActivatedNet {
  const n = dev.queueMaxSizes.length;
  const size = o.queueSize ?? 64;
  const memory = o.memory ?? testGuestMemory(BigInt(n + 1) << 22n);
  const features = o.features ?? dev.deviceFeatures;
  const queues: SplitQueue[] = [];
  const mqs: MockSplitQueue[] = [];
  for (let i = 0; i < n; i++) {
    const q = new SplitQueue(i, dev.queueMaxSizes[i]);
    const mq = new MockSplitQueue(memory, Math.min(size, dev.queueMaxSizes[i]), (BigInt(i) << 22n) | 0x1000n);
    mq.configure(q);
    queues.push(q);
    mqs.push(mq);
  }
  const interrupts: number[] = [];
  const resets: string[] = [];
  const h: ActivatedNet = {
    memory,
    events,
    driver: new NetTestDriver(mqs, memory),
    queues,
    mqs,
    interrupts,
    configChanges: 0,
    resets,
    ctrlQueue: n - 1,
    kick: (i) => {
      queueEvents[i].write(1n);
      events.run();
    },
    run: () => {
      events.run();
    },
  };
  const interrupt: VirtioInterrupt = {
    signalUsedQueue: (i) => interrupts.push(i),
    signalConfigChange: () => {
      h.configChanges++;
    },
  };
  const queueEvents = queues.map(() => events.factory.create({ nonBlocking: true }));
  for (const q of queues) q.activate(memory, features);
  dev.activate({ features, memory, queues, queueEvents, interrupt, needsReset: (r) => resets.push(r) });
  return h;
}

// ---- frames ----

/** The Ethernet broadcast address. */
export const BROADCAST = Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff);

/** An Ethernet II frame: destination, source, EtherType and payload (no FCS). */
export function ethernet(dst: Uint8Array, src: Uint8Array, type: number, payload: Uint8Array): Uint8Array {
  const f = new Uint8Array(14 + payload.length);
  f.set(dst, 0);
  f.set(src, 6);
  f[12] = type >> 8;
  f[13] = type & 0xff;
  f.set(payload, 14);
  return f;
}

/** Internet checksum (RFC 1071) of `b`. */
export function inetChecksum(b: Uint8Array): number {
  let s = 0;
  for (let i = 0; i + 1 < b.length; i += 2) s += (b[i] << 8) | b[i + 1];
  if (b.length & 1) s += b[b.length - 1] << 8;
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return ~s & 0xffff;
}

/** A dotted IPv4 address as 4 bytes. */
export const ipv4 = (s: string): Uint8Array => Uint8Array.from(s.split('.').map(Number));

/** An IPv4 packet (no options) carrying `payload` with protocol `proto`. */
export function ipv4Packet(src: Uint8Array, dst: Uint8Array, proto: number, payload: Uint8Array, id = 1): Uint8Array {
  const p = new Uint8Array(20 + payload.length);
  p[0] = 0x45;
  p[8] = 64;
  p[9] = proto;
  p[2] = p.length >> 8;
  p[3] = p.length & 0xff;
  p[4] = id >> 8;
  p[5] = id & 0xff;
  p.set(src, 12);
  p.set(dst, 16);
  const c = inetChecksum(p.subarray(0, 20));
  p[10] = c >> 8;
  p[11] = c & 0xff;
  p.set(payload, 20);
  return p;
}

/** ICMP echo request/reply (type 8/0) with a correct checksum. */
export function icmpEcho(type: 0 | 8, id: number, seq: number, data: Uint8Array): Uint8Array {
  const m = new Uint8Array(8 + data.length);
  m[0] = type;
  m[4] = id >> 8;
  m[5] = id & 0xff;
  m[6] = seq >> 8;
  m[7] = seq & 0xff;
  m.set(data, 8);
  const c = inetChecksum(m);
  m[2] = c >> 8;
  m[3] = c & 0xff;
  return m;
}

/** ARP request (op 1) or reply (op 2) for IPv4 over Ethernet. */
export function arp(
  op: 1 | 2,
  senderMac: Uint8Array,
  senderIp: Uint8Array,
  targetMac: Uint8Array,
  targetIp: Uint8Array,
): Uint8Array {
  const a = new Uint8Array(28);
  a.set([0, 1, 8, 0, 6, 4, 0, op]);
  a.set(senderMac, 8);
  a.set(senderIp, 14);
  a.set(targetMac, 18);
  a.set(targetIp, 24);
  return a;
}
