/**
 * virtio-net over the stream backend on a real libuv loop, real eventfds and a real socketpair (the peer plays
 * passt): a burst of frames arrives, in arbitrary chunk sizes, while the guest has no RX buffers, and the guest
 * sends more than the peer reads for a while. The device must stop reading the socket while it cannot deliver,
 * resume when buffers appear, and lose, reorder or mis-frame nothing either way.
 */
import { expect } from 'chai';
import { pino } from 'pino';
import { GuestAddress } from '../../../core/address.js';
import { LinuxEventFdFactory } from '../../../core/events/linux-eventfd.js';
import { UvEventLoop } from '../../../core/events/uv-event-loop.js';
import { c } from '../../../core/native/libc.js';
import type { Logger } from '../../../core/logger.js';
import { VIRTIO_F_RING_EVENT_IDX } from '../../../core/virtio/virtio.js';
import { VNET_HDR_SIZE } from '../constants.js';
import { VirtioNet } from '../device.js';
import { type MockSplitQueue } from '../../virtio/testing.js';
import { activateNet, type ActivatedNet } from '../testing.js';
import { AF_UNIX, MSG_DONTWAIT, net, SOCK_CLOEXEC, SOCK_NONBLOCK } from './native.js';
import { StreamSocketBackend } from './stream.js';

const SOCK_STREAM = 1;
const FIONREAD = 0x541b;
const VRING_USED_F_NO_NOTIFY = 1;
const RX_BUF = 2048;
const MAC = Uint8Array.of(0x52, 0x54, 0, 0x12, 0x34, 0x56);

/** A small deterministic generator (chunk and frame sizes), so a failure replays. */
function lcg(seed: number): (lo: number, hi: number) => number {
  let s = seed >>> 0;
  return (lo, hi) => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return lo + (s % (hi - lo + 1));
  };
}

/** Ethernet frame number `seq` of `len` bytes: to the guest's MAC, its bytes derived from seq. */
function frame(seq: number, len: number): Uint8Array {
  const f = new Uint8Array(len);
  f.set(MAC, 0);
  f.set([2, 0, 0, 0, 0, 1], 6);
  f[12] = 0x88;
  f[13] = 0xb5;
  new DataView(f.buffer).setUint32(14, seq, false);
  for (let i = 18; i < len; i++) f[i] = (seq * 7 + i) & 0xff;
  return f;
}

/** Frames as the stream carries them: a 4-byte big-endian length, then the frame. */
function framed(frames: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(frames.reduce((s, f) => s + 4 + f.length, 0));
  let at = 0;
  for (const f of frames) {
    new DataView(out.buffer).setUint32(at, f.length, false);
    out.set(f, at + 4);
    at += 4 + f.length;
  }
  return out;
}

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

/**
 * The device on a real loop over one end of a socketpair; the test plays the guest driver (RX buffers refilled,
 * kicks only when the device asks for them, as Linux does) and the peer (writes in chunks of any size, reads
 * when told to).
 */
class Rig {
  readonly loop = new UvEventLoop();
  readonly loopErrors: string[] = [];
  readonly warnings: string[] = [];
  readonly backend: StreamSocketBackend;
  readonly dev: VirtioNet;
  readonly h: ActivatedNet;
  readonly peer: number;
  readonly ours: number;
  /** Frames for the guest, in order, and the bytes of their stream the peer has not written yet. */
  readonly toGuest: Uint8Array[] = [];
  private wire = new Uint8Array(0);
  /** Frames the guest has taken, checked in order. */
  got = 0;
  /** Frames the guest sent, and how many of them the peer has read back intact. */
  readonly fromGuest: Uint8Array[] = [];
  peerGot = 0;
  /** Bytes of the stream to the guest the peer has written. */
  peerWritten = 0;
  /** The peer reads the socket in step(). */
  peerReads = true;
  private peerStream = new Uint8Array(0);
  private readonly rxAddr = new Map<number, bigint>();
  private readonly txAddrs: bigint[];
  private txQueued = 0;
  private txUsed = 0;

  constructor(readonly rand: (lo: number, hi: number) => number) {
    const sv = new Int32Array(2);
    expect(net.socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv)).to.equal(0);
    [this.ours, this.peer] = [sv[0], sv[1]];
    this.loop.onError((err, where) => this.loopErrors.push(`${where}: ${(err as Error).message}`));
    const logger = pino({ level: 'warn' }, { write: (l: string) => this.warnings.push(l) }) as unknown as Logger;
    this.backend = StreamSocketBackend.fromFd(this.ours, this.loop);
    this.dev = new VirtioNet({ id: 'net0', backend: this.backend, mac: MAC, defer: setImmediate }, this.loop, logger);
    this.h = activateNet(
      this.dev,
      { factory: new LinuxEventFdFactory(), run: () => {} },
      {
        features: this.dev.deviceFeatures & ~VIRTIO_F_RING_EVENT_IDX,
      },
    );
    this.txAddrs = Array.from({ length: this.txq.size }, () => this.txq.alloc(VNET_HDR_SIZE + 1514));
  }

  get rxq(): MockSplitQueue {
    return this.h.mqs[0];
  }
  get txq(): MockSplitQueue {
    return this.h.mqs[1];
  }

  /** Queues `count` frames of any size for the peer to write (numbered on from the last). */
  burst(count: number): void {
    const start = this.toGuest.length;
    const frames = Array.from({ length: count }, (_, i) => frame(start + i, this.rand(60, 1514)));
    this.toGuest.push(...frames);
    const more = framed(frames);
    const next = new Uint8Array(this.wire.length + more.length);
    next.set(this.wire);
    next.set(more, this.wire.length);
    this.wire = next;
  }

  /** The peer writes what the socket takes, in chunks of any size; false when bytes are left. */
  peerWrite(): boolean {
    let at = 0;
    while (at < this.wire.length) {
      const len = Math.min(this.rand(1, 3000), this.wire.length - at);
      const n = Number(c.write(this.peer, this.wire.subarray(at, at + len), len));
      if (n <= 0) break;
      at += n;
    }
    this.wire = this.wire.slice(at);
    this.peerWritten += at;
    return this.wire.length === 0;
  }

  /** Bytes the peer still has to write. */
  get unwritten(): number {
    return this.wire.length;
  }

  /** Bytes waiting in a socket's receive queue. */
  unread(fd: number): number {
    const n = new Int32Array(1);
    expect(net.ioctlIntPtr(fd, FIONREAD, n)).to.equal(0);
    return n[0];
  }

  /** The guest makes RX buffers available (each one chain of RX_BUF bytes) and kicks. */
  addRxBuffers(count: number): void {
    for (let i = 0; i < count; i++) this.addRx(this.rxq.alloc(RX_BUF));
    this.h.kick(0);
  }

  private addRx(addr: bigint): void {
    this.rxAddr.set(this.rxq.addChain([{ addr, len: RX_BUF, write: true }]), addr);
  }

  /** The guest puts frames on the TX queue (as many as the ring has room for) and kicks. */
  guestSend(count: number): void {
    const room = this.txq.size - (this.txQueued - this.txUsed);
    for (let i = 0; i < Math.min(count, room); i++) {
      const f = frame(1_000_000 + this.fromGuest.length, this.rand(60, 1514));
      const addr = this.txAddrs[this.txQueued++ % this.txq.size];
      this.h.memory.write(GuestAddress.of(addr), new Uint8Array(VNET_HDR_SIZE));
      this.h.memory.write(GuestAddress.of(addr + BigInt(VNET_HDR_SIZE)), f);
      this.txq.addChain([{ addr, len: VNET_HDR_SIZE + f.length }]);
      this.fromGuest.push(f);
    }
    this.h.kick(1);
  }

  /** What the guest and the peer do each turn: take RX frames (checked) and refill, reap TX, read, write. */
  step(): void {
    const used = this.rxq.readUsed();
    for (const u of used) {
      const addr = this.rxAddr.get(u.id)!;
      const bytes = this.h.memory.read(GuestAddress.of(addr), u.len);
      const want = this.toGuest[this.got];
      expect(u.len, `frame ${this.got} to the guest: length`).to.equal(VNET_HDR_SIZE + (want?.length ?? 0));
      expect(bytes[10] | (bytes[11] << 8), `frame ${this.got}: num_buffers`).to.equal(1);
      expect(Buffer.from(bytes.subarray(VNET_HDR_SIZE)).equals(want), `frame ${this.got}: bytes`).to.equal(true);
      this.got++;
      this.addRx(addr);
    }
    if (used.length && (this.rxq.usedFlags & VRING_USED_F_NO_NOTIFY) === 0) this.h.kick(0);
    this.txUsed += this.txq.readUsed().length;
    if (this.peerReads) this.peerRead();
    this.peerWrite();
  }

  private peerRead(): void {
    const buf = new Uint8Array(1 << 16);
    for (;;) {
      const n = Number(net.recv(this.peer, buf, buf.length, MSG_DONTWAIT));
      if (n <= 0) break;
      const next = new Uint8Array(this.peerStream.length + n);
      next.set(this.peerStream);
      next.set(buf.subarray(0, n), this.peerStream.length);
      this.peerStream = next;
    }
    while (this.peerStream.length >= 4) {
      const len = new DataView(this.peerStream.buffer, this.peerStream.byteOffset).getUint32(0, false);
      if (this.peerStream.length < 4 + len) break;
      const f = this.peerStream.subarray(4, 4 + len);
      const want = this.fromGuest[this.peerGot];
      expect(Buffer.from(f).equals(want), `frame ${this.peerGot} from the guest`).to.equal(true);
      this.peerGot++;
      this.peerStream = this.peerStream.slice(4 + len);
    }
  }

  /** Everything both ways got across. */
  get allDelivered(): boolean {
    return this.got === this.toGuest.length && this.wire.length === 0 && this.peerGot === this.fromGuest.length;
  }

  evidence(): string {
    return JSON.stringify({
      toGuest: this.toGuest.length,
      got: this.got,
      peerUnwritten: this.wire.length,
      fromGuest: this.fromGuest.length,
      txUsed: this.txUsed,
      peerGot: this.peerGot,
      unreadByDevice: this.unread(this.ours),
      unreadByPeer: this.unread(this.peer),
      metrics: this.dev.metrics.total(),
      droppedFull: this.backend.droppedFull,
      loopErrors: this.loopErrors,
      warnings: this.warnings,
    });
  }

  /** Turns the loop (doing step() each turn) until `done`; fails with the evidence when nothing moved for 10 s. */
  async until(what: string, done: () => boolean, stepping = true): Promise<void> {
    let last = '';
    let since = Date.now();
    while (!done()) {
      await turn();
      if (stepping) this.step();
      const now = `${this.got}/${this.wire.length}/${this.peerGot}/${this.txUsed}/${this.unread(this.ours)}`;
      if (now !== last) [last, since] = [now, Date.now()];
      else if (Date.now() - since > 10_000) throw new Error(`stalled waiting for ${what}: ${this.evidence()}`);
    }
  }

  /** Nothing lost or refused anywhere. */
  expectClean(): void {
    expect(this.backend.droppedFull, this.evidence()).to.equal(0);
    expect(this.dev.metrics.total().rxDropped, this.evidence()).to.equal(0);
    expect(this.dev.metrics.total().txErrors, this.evidence()).to.equal(0);
    expect(this.loopErrors, this.evidence()).to.deep.equal([]);
    expect(this.warnings, this.evidence()).to.deep.equal([]);
  }

  close(): void {
    this.dev.destroy();
    c.close(this.peer);
    this.loop.dispose();
  }
}

describe('virtio-net over the stream backend: bursts, no RX buffers, a slow peer (real loop and sockets)', function () {
  this.timeout(60_000);
  let rig: Rig | undefined;
  afterEach(() => rig?.close());

  it('holds the socket while the guest has no buffers, resumes on its kick, and loses or mis-frames nothing', async () => {
    const r = (rig = new Rig(lcg(0x5eed)));
    // A burst far larger than the socket buffer while the guest has no RX buffers: one frame read, then no more.
    r.burst(3000);
    r.peerWrite();
    await r.until('the device to find no RX buffers', () => r.dev.metrics.total().rxNoBuffers > 0, false);
    for (let i = 0; i < 50; i++) await turn();
    const inSocket = r.unread(r.ours);
    const [firstWritten, firstFrame] = [r.peerWritten, 4 + r.toGuest[0].length];
    expect(r.rxq.usedIdx).to.equal(0);
    r.addRxBuffers(r.rxq.size);
    await r.until('the first burst', () => r.allDelivered);
    expect(r.got).to.equal(3000);
    expect(inSocket, 'the device read one frame, not more, while it had no buffers').to.equal(
      firstWritten - firstFrame,
    );
    r.expectClean();
  });

  it('reads on while its own frames wait for a peer that does not read, and sends them all once it does', async () => {
    const r = (rig = new Rig(lcg(0xbee)));
    // 0. One frame and no RX buffers: the device stops watching the socket.
    r.burst(1);
    r.peerWrite();
    await r.until('the device to find no RX buffers', () => r.dev.metrics.total().rxNoBuffers > 0, false);
    // 1. The guest sends far more than the socket holds; the peer reads nothing: the backend keeps the rest.
    r.peerReads = false;
    let sent = 0;
    while (sent < 600) {
      const before = r.fromGuest.length;
      r.guestSend(600 - sent);
      sent += r.fromGuest.length - before;
      await r.until('the device to take the guest frames', () => r.txq.usedIdx === sent);
    }
    const held = r.fromGuest.reduce((s, f) => s + 4 + f.length, 0) - r.unread(r.peer);
    expect(held, 'bytes the backend holds for the peer').to.be.greaterThan(0);
    // 2. Buffers appear and the peer sends a burst: the device must watch the socket again while its writes wait.
    r.addRxBuffers(r.rxq.size);
    r.burst(2000);
    await r.until('the burst while the guest frames wait', () => r.got === 2001 && r.unwritten === 0);
    // 3. The peer reads again: every guest frame arrives in order; then another burst arrives.
    r.peerReads = true;
    await r.until('the guest frames at the peer', () => r.allDelivered);
    r.burst(500);
    await r.until('the last burst', () => r.allDelivered);
    // 4. And the other order: the device watches the socket (idle, buffers ready) when its writes start to wait.
    r.peerReads = false;
    r.guestSend(r.txq.size);
    for (let i = 0; i < 5; i++) {
      await r.until('the device to take the guest frames', () => r.txq.usedIdx === r.fromGuest.length);
      r.guestSend(r.txq.size);
    }
    r.burst(500);
    await r.until('a burst while the guest frames wait again', () => r.got === r.toGuest.length);
    r.peerReads = true;
    await r.until('everything', () => r.allDelivered);
    r.expectClean();
  });
});
