import * as fs from 'node:fs';
import * as net from 'node:net';
import type { Disposable } from '../../core/bus/bus.js';
import type { Logger } from '../../core/logger.js';
import {
  CONN_BUF_ALLOC,
  CONNECT_TIMEOUT_MS,
  FIRST_LOCAL_PORT,
  HOST_CID,
  MAX_CONNECT_LINE,
  MAX_CONNECTIONS,
  MAX_PENDING_CONTROL,
  Op,
  SHUTDOWN_RCV,
  SHUTDOWN_SEND,
  VSOCK_TYPE_STREAM,
} from './constants.js';
import { VsockConnection } from './connection.js';
import { VirtioVsockError } from './errors.js';
import type { VsockMetrics } from './metrics.js';
import type { VsockHeader, VsockPacket } from './packet.js';

/** What the muxer needs from its device and host. */
export interface VsockMuxerOptions {
  readonly guestCid: bigint;
  /** The host side's Unix socket: hosts connect here (`CONNECT <port>\n`); guest port P is `<udsPath>_<P>`. */
  readonly udsPath: string;
  readonly metrics: VsockMetrics;
  readonly logger?: Logger;
  /** One-shot timer (the VM's event loop). */
  readonly setTimer: (ms: number, cb: () => void) => Disposable;
  /** Called when packets for the guest are waiting (the device fills rx buffers). */
  readonly wake: () => void;
}

/**
 * The host side of virtio-vsock as Firecracker does it (its "vsock muxer" over Unix sockets):
 *  - guest → host: a REQUEST to CID 2 port P connects to the Unix socket `<udsPath>_<P>`;
 *    RESPONSE when it connected, RST when it could not;
 *  - host → guest: a host process connects to `<udsPath>` and writes `CONNECT <port>\n`; the muxer
 *    sends the guest a REQUEST from a local port it picks and, on the guest's RESPONSE, answers the
 *    host `OK <local port>\n`; RST (or no answer within CONNECT_TIMEOUT_MS) closes the host socket.
 * Then bytes flow both ways under credit flow control: the guest never gets more than its advertised
 * buffer allows (the host socket is paused meanwhile), and a guest that sends past the credit this side
 * advertised is reset. SHUTDOWN and EOF half-close each direction; RST tears down. Packets from the
 * guest that are not from its CID or not to the host are dropped; other socket types get RST.
 */
export class VsockMuxer {
  private readonly conns = new Map<string, VsockConnection>();
  private readonly control: VsockHeader[] = [];
  private readonly creditDue = new Set<string>();
  private server?: net.Server;
  private nextLocalPort = FIRST_LOCAL_PORT;
  /** The driver is live (DRIVER_OK); otherwise host connections are refused. */
  active = false;

  constructor(private readonly o: VsockMuxerOptions) {}

  /** Starts listening on udsPath (a stale socket file there is replaced; any other file is an error). */
  async listen(): Promise<void> {
    const p = this.o.udsPath;
    let st: fs.Stats | undefined;
    try {
      st = fs.lstatSync(p);
    } catch {
      st = undefined;
    }
    if (st && !st.isSocket())
      throw new VirtioVsockError('Config', `uds_path ${p} exists and is not a socket; refusing to replace it`, {
        path: p,
      });
    if (st) fs.unlinkSync(p);
    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: false }, (s) => this.onHostConnection(s));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) =>
        reject(new VirtioVsockError('Config', `cannot listen on ${p}: ${err.message}`, { path: p }, { cause: err })),
      );
      server.listen(p, () => resolve());
    });
    server.on('error', (err) => this.o.logger?.warn({ err }, 'vsock listener error'));
  }

  get connectionCount(): number {
    return this.conns.size;
  }

  /** Whether a packet for the guest is waiting (control, or data the guest has credit for). */
  hasRx(): boolean {
    if (this.control.length > 0 || this.creditDue.size > 0) return true;
    for (const c of this.conns.values()) if (this.sendable(c)) return true;
    return false;
  }

  private sendable(c: VsockConnection): boolean {
    if (c.state !== 'established') return false;
    if (c.pendingBytes > 0 && c.peerCredit > 0) return true;
    return c.hostEnded && !c.shutdownSent && c.pendingBytes === 0;
  }

  /** The next packet for the guest with at most `maxPayload` payload bytes, or undefined. */
  nextRx(maxPayload: number): VsockPacket | undefined {
    const hdr = this.control.shift();
    if (hdr) return { hdr, data: new Uint8Array(0) };
    for (const key of this.creditDue) {
      this.creditDue.delete(key);
      const c = this.conns.get(key);
      if (c && c.state === 'established') return { hdr: this.header(c, Op.CreditUpdate), data: new Uint8Array(0) };
    }
    for (const c of this.conns.values()) {
      if (!this.sendable(c)) continue;
      if (c.pendingBytes === 0) {
        c.shutdownSent = true;
        return { hdr: this.header(c, Op.Shutdown, SHUTDOWN_SEND), data: new Uint8Array(0) };
      }
      const data = c.take(Math.min(maxPayload, c.peerCredit, c.pendingBytes));
      if (c.socket.isPaused() && c.pendingBytes < CONN_BUF_ALLOC) c.socket.resume();
      this.o.metrics.rxBytes += data.length;
      const h = this.header(c, Op.Rw);
      h.len = data.length;
      return { hdr: h, data };
    }
    return undefined;
  }

  /** A header from this side of `c`, carrying our credit (and remembering the fwd_cnt told). */
  private header(c: VsockConnection, op: number, flags = 0): VsockHeader {
    c.lastFwdSent = c.fwdCnt;
    return {
      srcCid: HOST_CID,
      dstCid: this.o.guestCid,
      srcPort: c.localPort,
      dstPort: c.peerPort,
      len: 0,
      type: VSOCK_TYPE_STREAM,
      op,
      flags,
      bufAlloc: c.bufAlloc,
      fwdCnt: c.fwdCnt,
    };
  }

  private queueControl(h: VsockHeader): void {
    if (this.control.length >= MAX_PENDING_CONTROL) {
      this.o.metrics.droppedControl++;
      return;
    }
    this.control.push(h);
    this.o.wake();
  }

  /** RST for a packet that has no connection (answering the guest's addresses). */
  private rstFor(h: VsockHeader): void {
    this.queueControl({
      srcCid: HOST_CID,
      dstCid: this.o.guestCid,
      srcPort: h.dstPort,
      dstPort: h.srcPort,
      len: 0,
      type: VSOCK_TYPE_STREAM,
      op: Op.Rst,
      flags: 0,
      bufAlloc: 0,
      fwdCnt: 0,
    });
  }

  /** One packet from the guest's TX queue (header and payload already read and length-checked). */
  handleTx(p: VsockPacket): void {
    const h = p.hdr;
    const m = this.o.metrics;
    m.txPackets++;
    if (h.srcCid !== this.o.guestCid || h.dstCid !== HOST_CID) {
      m.droppedPackets++;
      return;
    }
    if (h.type !== VSOCK_TYPE_STREAM) {
      m.droppedPackets++;
      if (h.op !== Op.Rst) this.rstFor(h);
      return;
    }
    const c = this.conns.get(VsockConnection.key(h.dstPort, h.srcPort));
    if (h.op === Op.Request) {
      if (c) return this.reset(c, 'a second REQUEST on a live connection');
      return this.guestConnect(h);
    }
    if (!c) {
      if (h.op !== Op.Rst) this.rstFor(h);
      return;
    }
    c.peerBufAlloc = h.bufAlloc;
    c.peerFwdCnt = h.fwdCnt;
    switch (h.op) {
      case Op.Response:
        if (c.state !== 'awaiting-guest') return this.reset(c, 'RESPONSE on a connection not awaiting one');
        c.cancel?.();
        c.state = 'established';
        m.hostConnections++;
        c.socket.write(`OK ${c.localPort}\n`);
        break;
      case Op.Rw:
        if (c.state !== 'established' || c.guestEnded) return this.reset(c, 'data on a connection not open for it');
        if (c.inFlightToHost + p.data.length > c.bufAlloc) return this.reset(c, 'the guest sent past its credit');
        this.forward(c, p.data);
        break;
      case Op.CreditUpdate:
        break;
      case Op.CreditRequest:
        this.creditDue.add(c.key);
        break;
      case Op.Shutdown:
        if ((h.flags & (SHUTDOWN_RCV | SHUTDOWN_SEND)) === (SHUTDOWN_RCV | SHUTDOWN_SEND))
          return this.reset(c, undefined);
        if (h.flags & SHUTDOWN_SEND && !c.guestEnded) {
          c.guestEnded = true;
          c.socket.end();
        }
        break;
      case Op.Rst:
        this.close(c);
        return;
      default:
        return this.reset(c, `unknown op ${h.op}`);
    }
    this.o.wake(); // new credit may let pending data go
  }

  private forward(c: VsockConnection, data: Uint8Array): void {
    const n = data.length;
    if (n === 0) return;
    c.txCnt = (c.txCnt + n) >>> 0;
    this.o.metrics.txBytes += n;
    // A copy: the payload view aliases guest memory, which the guest may reuse once the chain is returned.
    c.socket.write(Buffer.from(data), (err) => {
      if (err || c.state === 'closed') return;
      c.fwdCnt = (c.fwdCnt + n) >>> 0;
      if ((c.fwdCnt - c.lastFwdSent) >>> 0 >= c.bufAlloc / 4) {
        this.creditDue.add(c.key);
        this.o.wake();
      }
    });
  }

  /** The guest's REQUEST to host port h.dstPort: connect to `<udsPath>_<port>`. */
  private guestConnect(h: VsockHeader): void {
    if (this.conns.size >= MAX_CONNECTIONS) {
      this.o.metrics.refusedConnections++;
      return this.rstFor(h);
    }
    const path = `${this.o.udsPath}_${h.dstPort}`;
    const socket = net.connect({ path, allowHalfOpen: true });
    const c = new VsockConnection(h.dstPort, h.srcPort, socket, 'awaiting-host');
    c.peerBufAlloc = h.bufAlloc;
    c.peerFwdCnt = h.fwdCnt;
    this.conns.set(c.key, c);
    socket.once('connect', () => {
      if (c.state !== 'awaiting-host') return;
      c.state = 'established';
      this.o.metrics.guestConnections++;
      this.queueControl(this.header(c, Op.Response));
    });
    this.wire(c);
  }

  /** A host process connected to udsPath: read its `CONNECT <port>\n`, then ask the guest. */
  private onHostConnection(socket: net.Socket): void {
    if (!this.active || this.conns.size >= MAX_CONNECTIONS) {
      this.o.metrics.refusedConnections++;
      socket.destroy();
      return;
    }
    let line = Buffer.alloc(0);
    const onData = (d: Buffer): void => {
      line = Buffer.concat([line, d]);
      const nl = line.indexOf(0x0a);
      if (nl < 0) {
        if (line.length > MAX_CONNECT_LINE) socket.destroy();
        return;
      }
      socket.off('data', onData);
      const m = /^CONNECT ([0-9]{1,10})$/.exec(line.subarray(0, nl).toString('latin1').trimEnd());
      const port = m ? Number(m[1]) : NaN;
      if (!m || port > 0xffff_ffff || !this.active) {
        this.o.metrics.refusedConnections++;
        socket.destroy();
        return;
      }
      const c = new VsockConnection(this.allocLocalPort(), port, socket, 'awaiting-guest');
      this.conns.set(c.key, c);
      const rest = line.subarray(nl + 1);
      if (rest.length) this.queueData(c, rest);
      const timer = this.o.setTimer(CONNECT_TIMEOUT_MS, () => {
        if (c.state === 'awaiting-guest') this.reset(c, 'the guest did not answer the connection request');
      });
      c.cancel = () => timer.dispose();
      this.queueControl(this.header(c, Op.Request));
      this.wire(c);
    };
    socket.on('data', onData);
    socket.on('error', () => socket.destroy());
  }

  private allocLocalPort(): number {
    for (;;) {
      const p = this.nextLocalPort;
      this.nextLocalPort = this.nextLocalPort >= 0xffff_fffe ? FIRST_LOCAL_PORT : this.nextLocalPort + 1;
      if (![...this.conns.values()].some((c) => c.localPort === p)) return p;
    }
  }

  /** Socket events of a connection: data queued for the guest, EOF half-closes, errors reset. */
  private wire(c: VsockConnection): void {
    c.socket.on('data', (d: Buffer) => this.queueData(c, d));
    c.socket.on('end', () => {
      c.hostEnded = true;
      this.o.wake();
    });
    c.socket.on('error', () => this.reset(c, undefined));
    c.socket.on('close', () => {
      if (c.state !== 'closed') this.reset(c, undefined);
    });
  }

  private queueData(c: VsockConnection, d: Buffer): void {
    if (c.state === 'closed') return;
    c.pending.push(d);
    c.pendingBytes += d.length;
    if (c.pendingBytes >= CONN_BUF_ALLOC) c.socket.pause(); // resumed as the guest takes it
    if (c.state === 'established') this.o.wake();
  }

  /** Resets a connection: RST to the guest, the host socket destroyed. */
  private reset(c: VsockConnection, why: string | undefined): void {
    if (c.state === 'closed') return;
    if (why) {
      this.o.metrics.resets++;
      this.o.logger?.warn({ local: c.localPort, peer: c.peerPort, why }, 'vsock connection reset');
    }
    this.queueControl(this.header(c, Op.Rst));
    this.close(c);
  }

  private close(c: VsockConnection): void {
    c.state = 'closed';
    c.cancel?.();
    this.conns.delete(c.key);
    this.creditDue.delete(c.key);
    c.socket.destroy();
  }

  /** Drops every connection (driver reset, teardown); the guest is not told (its transport was reset). */
  closeAll(): void {
    for (const c of [...this.conns.values()]) this.close(c);
    this.control.length = 0;
    this.creditDue.clear();
  }

  /** Stops listening and drops every connection; the socket file is removed. */
  async destroy(): Promise<void> {
    this.active = false;
    this.closeAll();
    const s = this.server;
    this.server = undefined;
    if (s) await new Promise<void>((r) => s.close(() => r()));
    try {
      if (fs.lstatSync(this.o.udsPath).isSocket()) fs.unlinkSync(this.o.udsPath);
    } catch {
      // already gone
    }
  }
}
