/**
 * A vhost-user back end in TypeScript for unit tests: listens on a Unix socket, answers the handshake
 * with the features, protocol features and config it was given, records every request, maps guest RAM
 * from the SET_MEM_TABLE fds and serves the rings as an echo device (each chain's readable bytes are
 * copied into its writable buffers), woken by the kick eventfds and signalling the call eventfds. Runs
 * on the same event loop as the front end (the front end never blocks on a reply).
 */
import { lstatSync, unlinkSync } from 'node:fs';
import { GuestAddress } from '../../core/address.js';
import type { Disposable } from '../../core/bus/bus.js';
import type { EventLoop } from '../../core/events/event-loop.js';
import { c, check, MAP_SHARED, PROT_READ, PROT_WRITE, viewOf } from '../../core/native/libc.js';
import type { GuestMemory } from '../../core/memory/guest-memory.js';
import { makeRegion, RegionGuestMemory } from '../../core/memory/region-guest-memory.js';
import { ChainReader, ChainWriter } from '../virtio/chain-io.js';
import { SplitQueue } from '../virtio/split-queue.js';
import { acceptUnix, listenUnix, sendWithFds } from './native.js';
import { MessageReader } from './reader.js';
import { FLAG_REPLY, FLAG_VERSION, message, Req, u64, VHOST_USER_F_PROTOCOL_FEATURES } from './protocol.js';

/** One request the fake back end received: its code, payload and how many fds came with it. */
export interface Recorded {
  readonly req: number;
  readonly payload: Uint8Array;
  readonly fds: number;
}

/** What the fake back end offers. */
export interface FakeBackendOptions {
  readonly features: bigint;
  readonly protocolFeatures?: bigint;
  readonly config?: Uint8Array;
  readonly queueNum?: number;
  /**
   * Hold every chain it takes instead of finishing it at once: `held` lists them, `complete()` finishes
   * some in the order given (a back end whose requests finish out of order, or that dies with some taken).
   */
  readonly hold?: boolean;
}

/** A chain the back end took and has not finished (FakeBackendOptions.hold). */
export interface HeldChain {
  readonly ring: number;
  readonly head: number;
  readonly len: number;
}

interface Ring {
  num: number;
  base: number;
  desc?: bigint;
  used?: bigint;
  avail?: bigint;
  kick?: number;
  call?: number;
  enabled: boolean;
  queue?: SplitQueue;
  watch?: Disposable;
}

/** The fake back end (see the module comment). `dispose()` closes everything, like a killed process. */
export class FakeVhostBackend implements Disposable {
  readonly received: Recorded[] = [];
  /** Chains served (echoed) so far. */
  served = 0;
  /** Chains taken and not yet finished (only with `hold`). */
  readonly held: HeldChain[] = [];
  private readonly listener: number;
  private readonly listenWatch: Disposable;
  private conn = -1;
  private connWatch: Disposable | undefined;
  private reader: MessageReader | undefined;
  private memory: RegionGuestMemory | undefined;
  private maps: { addr: bigint; len: number }[] = [];
  private regions: { gpa: bigint; size: bigint; user: bigint }[] = [];
  private rings = new Map<number, Ring>();
  private ackedFeatures = 0n;
  private waiters: (() => void)[] = [];

  constructor(
    readonly path: string,
    private readonly loop: EventLoop,
    private readonly opts: FakeBackendOptions,
  ) {
    removeSocket(path);
    this.listener = listenUnix(path);
    this.listenWatch = loop.watch(this.listener, { readable: true }, () => this.accept());
  }

  /** Resolves once `pred` holds (checked after every message and every served chain). */
  until(pred: () => boolean): Promise<void> {
    if (pred()) return Promise.resolve();
    return new Promise((resolve) => {
      const check = (): void => {
        if (pred()) resolve();
        else this.waiters.push(check);
      };
      this.waiters.push(check);
    });
  }

  /** Requests of one kind received so far. */
  requests(req: number): Recorded[] {
    return this.received.filter((r) => r.req === req);
  }

  /** The guest RAM as the back end mapped it (after SET_MEM_TABLE). */
  get mappedMemory(): GuestMemory | undefined {
    return this.memory;
  }

  private wake(): void {
    const w = this.waiters.splice(0);
    for (const f of w) f();
  }

  private accept(): void {
    const fd = acceptUnix(this.listener);
    if (fd < 0) return;
    if (this.conn >= 0) {
      c.close(fd); // one front end at a time
      return;
    }
    this.conn = fd;
    this.reader = new MessageReader(fd);
    this.connWatch = this.loop.watch(fd, { readable: true }, () => this.readable());
  }

  private readable(): void {
    for (;;) {
      const msg = this.reader?.next();
      if (msg === undefined) break;
      if (msg === null) {
        this.dropConnection();
        return;
      }
      this.received.push({ req: msg.req, payload: msg.payload, fds: msg.fds.length });
      this.handle(msg.req, msg.payload, msg.fds);
    }
    this.wake();
  }

  private reply(req: number, payload: Uint8Array, fds: number[] = []): void {
    sendWithFds(this.conn, message(req, payload, FLAG_VERSION | FLAG_REPLY), fds);
  }

  private ring(i: number): Ring {
    let r = this.rings.get(i);
    if (!r) this.rings.set(i, (r = { num: 0, base: 0, enabled: false }));
    return r;
  }

  private handle(req: number, p: Uint8Array, fds: number[]): void {
    const dv = new DataView(p.buffer, p.byteOffset, p.byteLength);
    const o = this.opts;
    switch (req) {
      case Req.GET_FEATURES:
        return this.reply(req, u64(o.features));
      case Req.GET_PROTOCOL_FEATURES:
        return this.reply(req, u64(o.protocolFeatures ?? 0n));
      case Req.GET_QUEUE_NUM:
        return this.reply(req, u64(BigInt(o.queueNum ?? 1)));
      case Req.SET_FEATURES:
        this.ackedFeatures = dv.getBigUint64(0, true);
        return;
      case Req.GET_CONFIG: {
        const size = dv.getUint32(4, true);
        const out = p.slice();
        out.set((o.config ?? new Uint8Array(0)).subarray(0, size), 12);
        return this.reply(req, out);
      }
      case Req.SET_MEM_TABLE:
        return this.mapMemory(dv, fds);
      case Req.SET_VRING_NUM:
        this.ring(dv.getUint32(0, true)).num = dv.getUint32(4, true);
        return;
      case Req.SET_VRING_BASE:
        this.ring(dv.getUint32(0, true)).base = dv.getUint32(4, true);
        return;
      case Req.SET_VRING_ADDR: {
        const r = this.ring(dv.getUint32(0, true));
        r.desc = this.toGpa(dv.getBigUint64(8, true));
        r.used = this.toGpa(dv.getBigUint64(16, true));
        r.avail = this.toGpa(dv.getBigUint64(24, true));
        return;
      }
      case Req.SET_VRING_CALL:
        this.ring(Number(dv.getBigUint64(0, true) & 0xffn)).call = fds[0];
        return;
      case Req.SET_VRING_KICK:
        this.ring(Number(dv.getBigUint64(0, true) & 0xffn)).kick = fds[0];
        return this.startRing(Number(dv.getBigUint64(0, true) & 0xffn));
      case Req.SET_VRING_ENABLE: {
        const r = this.ring(dv.getUint32(0, true));
        r.enabled = dv.getUint32(4, true) === 1;
        return; // like libvhost-user without in-flight tracking: serves only when kicked
      }
      case Req.GET_VRING_BASE: {
        const i = dv.getUint32(0, true);
        const r = this.ring(i);
        r.watch?.dispose();
        r.watch = undefined;
        const base = r.queue?.progress().nextAvail ?? r.base;
        r.queue = undefined;
        const out = new Uint8Array(8);
        new DataView(out.buffer).setUint32(0, i, true);
        new DataView(out.buffer).setUint32(4, base, true);
        return this.reply(req, out);
      }
      default:
        for (const f of fds) c.close(f);
    }
  }

  private mapMemory(dv: DataView, fds: number[]): void {
    this.unmap();
    const n = dv.getUint32(0, true);
    const regions = [];
    for (let i = 0; i < n; i++) {
      const o = 8 + 32 * i;
      const gpa = dv.getBigUint64(o, true);
      const size = dv.getBigUint64(o + 8, true);
      const user = dv.getBigUint64(o + 16, true);
      const off = dv.getBigUint64(o + 24, true);
      const addr = check('mmap', c.mmap(0n, size, PROT_READ | PROT_WRITE, MAP_SHARED, fds[i], off) as bigint);
      this.maps.push({ addr, len: Number(size) });
      c.close(fds[i]);
      this.regions.push({ gpa, size, user });
      regions.push(makeRegion(gpa, viewOf(addr, Number(size)), addr, { kind: 'heap' }));
    }
    this.memory = new RegionGuestMemory(regions);
  }

  private toGpa(user: bigint): bigint {
    const r = this.regions.find((x) => user >= x.user && user < x.user + x.size);
    if (!r) throw new Error(`fake back end: address 0x${user.toString(16)} outside the memory table`);
    return r.gpa + (user - r.user);
  }

  private startRing(i: number): void {
    const r = this.ring(i);
    if (!this.memory || r.desc === undefined || r.kick === undefined) return;
    const q = new SplitQueue(i, r.num);
    q.size = r.num;
    q.descTable = r.desc;
    q.availRing = r.avail!;
    q.usedRing = r.used!;
    q.ready = true;
    const usedIdx = this.memory.readU16(GuestAddress.of(r.used! + 2n));
    q.activate(this.memory, this.ackedFeatures, { nextAvail: r.base, nextUsed: usedIdx, signalledUsed: usedIdx });
    r.queue = q;
    const kick = r.kick;
    r.watch = this.loop.watch(kick, { readable: true }, () => {
      c.read(kick, new Uint8Array(8), 8);
      this.serve(r);
    });
    if (!(this.ackedFeatures & VHOST_USER_F_PROTOCOL_FEATURES)) r.enabled = true;
  }

  private serve(r: Ring): void {
    const q = r.queue;
    if (!q || !r.enabled || !this.memory) return;
    let any = false;
    for (let chain = q.pop(); chain; chain = q.pop()) {
      const n = Math.min(chain.readableLength, chain.writableLength);
      const data = new ChainReader(this.memory, chain).read(n);
      new ChainWriter(this.memory, chain).write(data);
      if (this.opts.hold) {
        this.held.push({ ring: q.index, head: chain.head, len: n });
        continue;
      }
      q.addUsed(chain.head, n);
      this.served++;
      any = true;
    }
    if (any) this.call(r);
    this.wake();
  }

  /** Finishes held chains (indices into `held`, in this order) and signals the call eventfd. */
  complete(indices: readonly number[]): void {
    const picked = indices.map((i) => this.held[i]);
    for (const h of picked) {
      if (!h) throw new Error('fake back end: no such held chain');
      const r = this.ring(h.ring);
      r.queue?.addUsed(h.head, h.len);
      this.served++;
    }
    for (const h of picked) this.held.splice(this.held.indexOf(h), 1);
    for (const ring of new Set(picked.map((h) => h.ring))) this.call(this.ring(ring));
    this.wake();
  }

  private call(r: Ring): void {
    if (r.call === undefined) return;
    const one = new Uint8Array(8);
    one[0] = 1;
    c.write(r.call, one, 8);
  }

  private dropConnection(): void {
    this.connWatch?.dispose();
    this.connWatch = undefined;
    this.reader?.discardFds();
    this.reader = undefined;
    if (this.conn >= 0) c.close(this.conn);
    this.conn = -1;
    for (const r of this.rings.values()) {
      r.watch?.dispose();
      if (r.kick !== undefined) c.close(r.kick);
      if (r.call !== undefined) c.close(r.call);
    }
    this.rings.clear();
    this.held.splice(0); // a dead back end finishes nothing it took
    this.unmap();
  }

  private unmap(): void {
    this.memory = undefined;
    for (const m of this.maps) c.munmap(m.addr, BigInt(m.len));
    this.maps = [];
    this.regions = [];
  }

  /** Closes the connection and the listening socket (what a killed back end leaves behind). */
  dispose(): void {
    this.dropConnection();
    this.listenWatch.dispose();
    c.close(this.listener);
    removeSocket(this.path);
  }
}

function removeSocket(path: string): void {
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch {
    /* absent */
  }
}
