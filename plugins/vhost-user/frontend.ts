import type { Disposable } from '../../core/bus/bus.js';
import type { EventLoop } from '../../core/events/event-loop.js';
import type { Logger } from '../../core/logger.js';
import { c } from '../../core/native/libc.js';
import { VhostUserConnection } from './connection.js';
import { VhostUserError } from './errors.js';
import { connectUnix, errName } from './native.js';
import {
  configRequest,
  inflight,
  memTable,
  ProtocolFeature,
  readConfig,
  readInflight,
  readU64,
  Req,
  SUPPORTED_PROTOCOL_FEATURES,
  u64,
  VHOST_USER_F_PROTOCOL_FEATURES,
  vringAddr,
  vringState,
  type Inflight,
  type MemRegion,
} from './protocol.js';

/** One queue as the back end gets it: guest-physical ring addresses, eventfds, where to start. */
export interface VringSetup {
  readonly index: number;
  readonly size: number;
  readonly desc: bigint;
  readonly avail: bigint;
  readonly used: bigint;
  /** The eventfd the driver's notifications land in (the transport's ioeventfd). */
  readonly kickFd: number;
  /** The eventfd the back end writes for an interrupt. */
  readonly callFd: number;
  /** Where the back end starts in the available ring: 0 on a fresh start, re-read on every reconnect. */
  readonly base: () => number;
}

/** What the back end needs to run the device's queues. */
export interface DeviceSetup {
  /** Virtio features the driver accepted (VHOST_USER_F_PROTOCOL_FEATURES is added here when negotiated). */
  readonly features: bigint;
  /** Guest RAM as fds: SET_MEM_TABLE. */
  readonly regions: readonly MemRegion[];
  readonly queues: readonly VringSetup[];
  /** The largest queue size (GET_INFLIGHT_FD). */
  readonly maxQueueSize: number;
  /** Queues of the device (GET_INFLIGHT_FD). */
  readonly numQueues: number;
}

/** How a front end connects and what it asks the back end for. */
export interface FrontendOptions {
  /** The back end's Unix socket. */
  readonly socketPath: string;
  readonly loop: EventLoop;
  readonly logger?: Logger;
  /** Bytes of device config space to read with GET_CONFIG once connected (needs the CONFIG protocol feature). */
  readonly configSize?: number;
  /** Milliseconds between reconnect attempts after the back end went away (default 200). */
  readonly reconnectMs?: number;
  /** Called when the back end cannot carry on (its features shrank, a reconnect handshake broke). */
  readonly onFatal?: (why: string) => void;
}

/** What the back end said during the handshake. */
export interface BackendInfo {
  /** Its virtio features (GET_FEATURES), VHOST_USER_F_PROTOCOL_FEATURES included when offered. */
  readonly features: bigint;
  /** Protocol features both sides use. */
  readonly protocolFeatures: bigint;
  /** GET_CONFIG's answer, when asked for and offered. */
  readonly config?: Uint8Array;
  /** GET_QUEUE_NUM's answer (MQ), else undefined. */
  readonly maxQueues?: number;
}

/**
 * The front end of one vhost-user device (QEMU docs/interop/vhost-user.rst): connects to the back end's
 * socket, negotiates (GET/SET_FEATURES, protocol features, SET_OWNER), reads the config space, and when the
 * driver activates the device hands the back end guest RAM (SET_MEM_TABLE with the memfds), each queue's
 * size, addresses, base and kick/call eventfds. The data path never passes through it: the back end reads
 * the rings in shared memory, is woken by the ioeventfd and raises interrupts through the call eventfd.
 *
 * When the back end goes away (killed, restarted) the front end reconnects every `reconnectMs`, repeats the
 * handshake and, if the device was running, the whole set-up with each ring's base taken from the used
 * index in guest memory, plus the in-flight area (INFLIGHT_SHMFD) so requests it had taken and not
 * finished are done again by the new back end. Meanwhile the guest's notifications wait in the eventfds.
 */
export class VhostUserFrontend implements Disposable {
  private conn: VhostUserConnection | undefined;
  private info: BackendInfo | undefined;
  private running: DeviceSetup | undefined;
  private inflightArea: { info: Inflight; fd: number } | undefined;
  private reconnectTimer: Disposable | undefined;
  private disposed = false;
  /** Completed reconnects (tests, logs). */
  reconnects = 0;
  /** The last set-up sequence, so callers and tests can wait for it. */
  private settled: Promise<void> = Promise.resolve();

  private constructor(private readonly opts: FrontendOptions) {}

  /** Connects and negotiates; throws VhostUserError('Connect' | 'Protocol' | 'Disconnected') on failure. */
  static async connect(opts: FrontendOptions): Promise<VhostUserFrontend> {
    const fe = new VhostUserFrontend(opts);
    try {
      await fe.open();
    } catch (err) {
      fe.dispose();
      throw err;
    }
    return fe;
  }

  /** The handshake's result (features, protocol features, config). */
  get backend(): BackendInfo {
    if (!this.info) throw new VhostUserError('Disconnected', `${this.opts.socketPath}: not connected`, {});
    return this.info;
  }

  get connected(): boolean {
    return this.conn?.isOpen ?? false;
  }

  private async open(): Promise<void> {
    let fd: number;
    try {
      fd = connectUnix(this.opts.socketPath);
    } catch (err) {
      throw new VhostUserError('Connect', `vhost-user back end ${this.opts.socketPath}: ${errName(err)}`, {
        path: this.opts.socketPath,
      });
    }
    const conn = new VhostUserConnection(fd, this.opts.loop, (why) => this.lost(conn, why));
    this.conn = conn;
    this.info = await this.handshake(conn);
  }

  private async handshake(conn: VhostUserConnection): Promise<BackendInfo> {
    const features = readU64((await conn.request(Req.GET_FEATURES)).payload, 'GET_FEATURES');
    let protocolFeatures = 0n;
    if (features & VHOST_USER_F_PROTOCOL_FEATURES) {
      const offered = readU64((await conn.request(Req.GET_PROTOCOL_FEATURES)).payload, 'GET_PROTOCOL_FEATURES');
      protocolFeatures = offered & SUPPORTED_PROTOCOL_FEATURES;
      conn.send(Req.SET_PROTOCOL_FEATURES, u64(protocolFeatures));
    }
    conn.send(Req.SET_OWNER);
    let maxQueues: number | undefined;
    if (protocolFeatures & ProtocolFeature.MQ)
      maxQueues = Number(readU64((await conn.request(Req.GET_QUEUE_NUM)).payload, 'GET_QUEUE_NUM'));
    let config: Uint8Array | undefined;
    const size = this.opts.configSize;
    if (size && protocolFeatures & ProtocolFeature.CONFIG) {
      const r = await conn.request(Req.GET_CONFIG, configRequest(0, size));
      config = readConfig(r.payload, size);
    }
    return { features, protocolFeatures, config, maxQueues };
  }

  /**
   * Starts the back end on the driver's queues (at DRIVER_OK). Messages go out in order at once; the
   * returned promise settles when the back end answered the one request that waits (GET_INFLIGHT_FD).
   * Rejects with VhostUserError when the back end is gone (it then resumes on reconnect) or lacks a feature.
   */
  start(setup: DeviceSetup): Promise<void> {
    this.running = setup;
    const conn = this.conn;
    this.settled = conn?.isOpen
      ? this.setUp(conn, setup)
      : Promise.reject(new VhostUserError('Disconnected', `${this.opts.socketPath}: not connected`, {}));
    return this.settled;
  }

  private async setUp(conn: VhostUserConnection, s: DeviceSetup): Promise<void> {
    const info = this.backend;
    const missing = s.features & ~info.features;
    if (missing)
      throw new VhostUserError('Unsupported', `the back end lacks features 0x${missing.toString(16)}`, {
        missing,
      });
    const withProtocol = (info.features & VHOST_USER_F_PROTOCOL_FEATURES) !== 0n;
    conn.send(Req.SET_FEATURES, u64(s.features | (withProtocol ? VHOST_USER_F_PROTOCOL_FEATURES : 0n)));
    conn.send(
      Req.SET_MEM_TABLE,
      memTable(s.regions),
      s.regions.map((r) => r.fd),
    );
    if (info.protocolFeatures & ProtocolFeature.INFLIGHT_SHMFD) {
      if (!this.inflightArea) {
        const ask = { mmapSize: 0n, mmapOffset: 0n, numQueues: s.numQueues, queueSize: s.maxQueueSize };
        const r = await conn.request(Req.GET_INFLIGHT_FD, inflight(ask));
        const area = readInflight(r.payload);
        if (r.fds.length !== 1) {
          for (const f of r.fds) c.close(f);
          throw new VhostUserError('Protocol', `GET_INFLIGHT_FD came with ${r.fds.length} fds, not 1`, {});
        }
        this.inflightArea = { info: { ...area, numQueues: s.numQueues, queueSize: s.maxQueueSize }, fd: r.fds[0] };
      }
      conn.send(Req.SET_INFLIGHT_FD, inflight(this.inflightArea.info), [this.inflightArea.fd]);
    }
    const toUser = (gpa: bigint): bigint => userAddress(s.regions, gpa);
    for (const q of s.queues) {
      conn.send(Req.SET_VRING_NUM, vringState(q.index, q.size));
      conn.send(Req.SET_VRING_BASE, vringState(q.index, q.base()));
      conn.send(
        Req.SET_VRING_ADDR,
        vringAddr({ index: q.index, desc: toUser(q.desc), used: toUser(q.used), avail: toUser(q.avail) }),
      );
      conn.send(Req.SET_VRING_CALL, u64(BigInt(q.index)), [q.callFd]);
      conn.send(Req.SET_VRING_KICK, u64(BigInt(q.index)), [q.kickFd]);
    }
    if (withProtocol) for (const q of s.queues) conn.send(Req.SET_VRING_ENABLE, vringState(q.index, 1));
  }

  /**
   * The driver reset the device: the back end stops every ring (GET_VRING_BASE, whose answers are not
   * needed) and forgets the in-flight area; a later start() sets everything up again.
   */
  stop(): void {
    const s = this.running;
    this.running = undefined;
    this.dropInflight();
    const conn = this.conn;
    if (!s || !conn?.isOpen) return;
    try {
      for (const q of s.queues) void conn.request(Req.GET_VRING_BASE, vringState(q.index, 0)).catch(() => undefined);
    } catch {
      /* gone: it starts clean after a reconnect */
    }
  }

  /** Resolves when the last start (or the resumption after a reconnect) went out; rejects as it did. */
  whenSettled(): Promise<void> {
    return this.settled;
  }

  private lost(conn: VhostUserConnection, why: string): void {
    if (this.conn !== conn || this.disposed) return;
    this.opts.logger?.warn({ socket: this.opts.socketPath, why }, 'vhost-user back end lost; reconnecting');
    this.conn = undefined;
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.reconnectTimer || this.disposed) return;
    this.reconnectTimer = this.opts.loop.setTimer(this.opts.reconnectMs ?? 200, () => this.tryReconnect(), {
      repeat: true,
    });
  }

  private reconnecting = false;

  private tryReconnect(): void {
    if (this.reconnecting || this.disposed) return;
    this.reconnecting = true;
    this.open().then(
      () => {
        this.reconnecting = false;
        this.reconnectTimer?.dispose();
        this.reconnectTimer = undefined;
        this.reconnects++;
        this.opts.logger?.info({ socket: this.opts.socketPath }, 'vhost-user back end reconnected');
        const s = this.running;
        if (s && this.conn) {
          // A restarted back end starts from the used index but was never kicked for what the guest had
          // already made available (the old one took those kicks): kick every queue once it is set up.
          this.settled = this.setUp(this.conn, s).then(() => kickAll(s));
          this.settled.catch((err: unknown) => this.fatal(err));
        }
      },
      (err: unknown) => {
        this.reconnecting = false;
        if (err instanceof VhostUserError && err.kind === 'Connect') return; // not back yet: the timer tries again
        this.opts.logger?.warn({ err, socket: this.opts.socketPath }, 'vhost-user reconnect handshake failed');
        this.conn?.dispose();
        this.conn = undefined;
      },
    );
  }

  private fatal(err: unknown): void {
    if (err instanceof VhostUserError && err.kind === 'Disconnected') return; // the next reconnect resumes
    const why = `vhost-user back end ${this.opts.socketPath}: ${(err as Error)?.message ?? String(err)}`;
    this.opts.logger?.warn({ err }, why);
    this.opts.onFatal?.(why);
  }

  private dropInflight(): void {
    if (this.inflightArea) c.close(this.inflightArea.fd);
    this.inflightArea = undefined;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.reconnectTimer?.dispose();
    this.reconnectTimer = undefined;
    this.conn?.dispose();
    this.conn = undefined;
    this.dropInflight();
  }
}

/** Writes 1 to every queue's kick eventfd (a spurious notification is always allowed). */
function kickAll(s: DeviceSetup): void {
  const one = new Uint8Array(8);
  one[0] = 1;
  for (const q of s.queues) c.write(q.kickFd, one, 8);
}

/** The front end's address of guest-physical `gpa` (a ring), through the memory table it sent. */
export function userAddress(regions: readonly MemRegion[], gpa: bigint): bigint {
  for (const r of regions)
    if (gpa >= r.guestPhysAddr && gpa < r.guestPhysAddr + r.size) return r.userAddr + (gpa - r.guestPhysAddr);
  throw new VhostUserError('Memory', `guest address 0x${gpa.toString(16)} is outside the memory table`, { gpa });
}
