import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import type { Disposable } from '../../core/bus/bus.js';
import type { EventLoop } from '../../core/events/event-loop.js';
import type { Logger } from '../../core/logger.js';
import type { Snapshottable } from '../../core/state/snapshottable.js';
import { LogRateLimiter, suppressedNote } from '../../core/ratelimit/log-limiter.js';
import { RateLimiter, type RateLimiterClock, type RateLimiterConfig } from '../../core/ratelimit/rate-limiter.js';
import {
  VIRTIO_F_RING_EVENT_IDX,
  VIRTIO_F_RING_INDIRECT_DESC,
  VIRTIO_F_VERSION_1,
  VirtioDeviceType,
  type VirtioActivation,
  type VirtioDevice,
  type VirtioInterrupt,
} from '../../core/virtio/virtio.js';
import type { NetBackend } from './backends/backend.js';
import type { NetBackendError } from './backends/errors.js';
import { buildNetConfig, formatMac, NET_CONFIG_SIZE } from './config-space.js';
import {
  CONFIG_MAX_QUEUE_PAIRS,
  DEFAULT_QUEUE_SIZE,
  GUEST_OFFLOAD_MASK,
  MAX_MTU,
  MIN_MTU,
  NetFeature,
} from './constants.js';
import { CtrlHandler, defaultRxMode, type NetControl, type RxMode } from './ctrl.js';
import { VirtioNetError } from './errors.js';
import { NetMetrics } from './metrics.js';
import { RxHandler } from './rx.js';
import { NetStateSpec, type NetState } from './state.js';
import { TxHandler } from './tx.js';

/**
 * What a VirtioNet is built with: its id, the backend it takes over, the MAC, MTU and queue shape it presents,
 * offloads, rate limits, link state, and test seams.
 */
export interface VirtioNetOptions {
  readonly id: string;
  /** The opened backend; the device owns it from now on and closes it in destroy(). */
  readonly backend: NetBackend;
  readonly mac: Uint8Array;
  /** Offered with VIRTIO_NET_F_MTU when set (the backend's MTU should match). */
  readonly mtu?: number;
  /** Queue pairs offered (default: the backend's); > 1 offers VIRTIO_NET_F_MQ. */
  readonly queuePairs?: number;
  readonly queueSize?: number;
  /** Offer checksum/TSO offloads the backend supports (default true). */
  readonly offloads?: boolean;
  readonly rateLimiter?: { readonly rx?: RateLimiterConfig; readonly tx?: RateLimiterConfig };
  readonly linkUp?: boolean;
  /** Clock for the rate limiters (tests). */
  readonly clock?: RateLimiterClock;
  /** Replaces setImmediate for yielding after a budget of frames (tests). */
  readonly defer?: (cb: () => void) => void;
}

const CTRL_QUEUE_SIZE = 64;

interface Pair {
  rx: RxHandler;
  tx: TxHandler;
  watch?: Disposable;
  fd: number;
  index: number;
}

/**
 * A virtio-net device (virtio 1.2 §5.1, type 1) over a NetBackend, independent of its
 * transport. Queues: rx0, tx0, rx1, tx1, ..., then the control queue. RX is driven by
 * backend readiness on the main event loop and by RX queue notifications (new
 * buffers); TX by the TX queues' ioeventfds. Both directions share one rate
 * limiter each (bytes + packets). Guest offloads are passed to the backend
 * (TUNSETOFFLOAD) at activation and by CTRL_GUEST_OFFLOADS. RX filters set over the
 * control queue (promisc, MAC tables) are acknowledged and recorded, not enforced:
 * every frame the backend delivers reaches the guest, as with a tap on a bridge.
 */
export class VirtioNet implements VirtioDevice, NetControl, Snapshottable<NetState> {
  /** The schema and version of its saved state (core/state). */
  readonly stateSpec = NetStateSpec;
  readonly deviceType = VirtioDeviceType.net;
  readonly queueMaxSizes: readonly number[];
  readonly deviceFeatures: bigint;
  readonly configSize = NET_CONFIG_SIZE;
  readonly metrics: NetMetrics;
  /** Contract C4 (core/device Countable): the sum over its queue pairs plus the control queue's counters. */
  counters(): Record<string, number> {
    const c = this.metrics.ctrl;
    return { ...this.metrics.total(), ctrlCommands: c.commands, ctrlErrors: c.errors };
  }
  readonly maxQueuePairs: number;
  readonly mtu: number;
  features = 0n;
  /** Features of the last activation (kept after reset, for the statistics logged at destroy). */
  private negotiated = 0n;
  rxMode: RxMode = defaultRxMode();
  macTable: { unicast: Uint8Array[]; multicast: Uint8Array[] } = { unicast: [], multicast: [] };
  mac: Uint8Array;
  activePairs = 1;
  guestOffloads = 0n;
  private link: boolean;
  private announcing = false;
  private readonly rxLimiter: RateLimiter;
  private readonly txLimiter: RateLimiter;
  private pairs: Pair[] = [];
  private ctrl?: CtrlHandler;
  private watches: Disposable[] = [];
  private activation?: VirtioActivation;
  private configInterrupt?: VirtioInterrupt;
  private destroyed = false;
  /** Control-queue settings from restore(), applied by the next activate(). */
  private restored?: { activePairs: number; guestOffloads: bigint };
  private readonly defer: (cb: () => void) => void;
  /** Event-loop utilization at the first activation (the main thread's load, logged at destroy). */
  private elu?: EventLoopUtilization;
  /** A guest can repeat what fails (a bad frame, a broken queue after each reset): those warnings are rate-limited. */
  private readonly logLimit = new LogRateLimiter();

  constructor(
    private readonly opts: VirtioNetOptions,
    private readonly loop: EventLoop,
    private readonly logger?: Logger,
  ) {
    const b = opts.backend;
    const pairs = opts.queuePairs ?? b.queuePairs;
    const queueSize = opts.queueSize ?? DEFAULT_QUEUE_SIZE;
    if (!Number.isInteger(pairs) || pairs < 1 || pairs > CONFIG_MAX_QUEUE_PAIRS) {
      throw new VirtioNetError('Config', `${opts.id}: queuePairs ${pairs} must be 1..${CONFIG_MAX_QUEUE_PAIRS}`, {
        pairs,
      });
    }
    if (pairs > b.queuePairs) {
      throw new VirtioNetError(
        'Config',
        `${opts.id}: ${pairs} queue pairs asked but the ${b.kind} backend has ${b.queuePairs}`,
        { pairs, backend: b.queuePairs },
      );
    }
    if (!Number.isInteger(queueSize) || queueSize < 16 || queueSize > 32768 || (queueSize & (queueSize - 1)) !== 0) {
      throw new VirtioNetError('Config', `${opts.id}: queueSize ${queueSize} must be a power of two in 16..32768`, {
        queueSize,
      });
    }
    if (opts.mac.length !== 6 || (opts.mac[0] & 1) !== 0) {
      throw new VirtioNetError('Config', `${opts.id}: MAC ${formatMac(opts.mac)} must be 6 bytes and unicast`, {});
    }
    if (opts.mtu !== undefined && (!Number.isInteger(opts.mtu) || opts.mtu < MIN_MTU || opts.mtu > MAX_MTU)) {
      throw new VirtioNetError('Config', `${opts.id}: mtu ${opts.mtu} must be ${MIN_MTU}..${MAX_MTU}`, {
        mtu: opts.mtu,
      });
    }
    this.maxQueuePairs = pairs;
    this.mtu = opts.mtu ?? 1500;
    this.mac = opts.mac.slice();
    this.link = opts.linkUp ?? true;
    this.queueMaxSizes = [...Array.from({ length: 2 * pairs }, () => queueSize), CTRL_QUEUE_SIZE];
    this.deviceFeatures = this.offer(b, pairs, opts);
    this.metrics = new NetMetrics(pairs);
    this.rxLimiter = new RateLimiter(opts.rateLimiter?.rx ?? {}, opts.clock);
    this.txLimiter = new RateLimiter(opts.rateLimiter?.tx ?? {}, opts.clock);
    this.defer =
      opts.defer ??
      ((cb) => {
        setImmediate(cb);
      });
  }

  private offer(b: NetBackend, pairs: number, o: VirtioNetOptions): bigint {
    const F = NetFeature;
    let f =
      VIRTIO_F_VERSION_1 |
      VIRTIO_F_RING_EVENT_IDX |
      VIRTIO_F_RING_INDIRECT_DESC |
      F.MAC |
      F.STATUS |
      F.MRG_RXBUF |
      F.CTRL_VQ |
      F.CTRL_RX |
      F.CTRL_MAC_ADDR |
      F.GUEST_ANNOUNCE;
    if (pairs > 1) f |= F.MQ;
    if (o.mtu !== undefined) f |= F.MTU;
    if (b.vnetHeader && (o.offloads ?? true)) {
      const { host, guest } = b.offloads;
      if (host.csum) {
        f |= F.CSUM;
        if (host.tso4) f |= F.HOST_TSO4;
        if (host.tso6) f |= F.HOST_TSO6;
        if (host.ecn && (host.tso4 || host.tso6)) f |= F.HOST_ECN;
        if (host.ufo) f |= F.HOST_UFO;
      }
      if (guest.csum) {
        f |= F.GUEST_CSUM | F.CTRL_GUEST_OFFLOADS;
        if (guest.tso4) f |= F.GUEST_TSO4;
        if (guest.tso6) f |= F.GUEST_TSO6;
        if (guest.ecn && (guest.tso4 || guest.tso6)) f |= F.GUEST_ECN;
        if (guest.ufo) f |= F.GUEST_UFO;
      }
    }
    return f;
  }

  get id(): string {
    return this.opts.id;
  }
  get backend(): NetBackend {
    return this.opts.backend;
  }
  get linkUp(): boolean {
    return this.link;
  }
  get active(): boolean {
    return this.activation !== undefined;
  }

  /** Interrupts usable outside activation (the transport's attachment), for link changes. */
  bindInterrupt(i: VirtioInterrupt): void {
    this.configInterrupt = i;
  }

  private config(): Uint8Array {
    return buildNetConfig({
      mac: this.mac,
      linkUp: this.link,
      announce: this.announcing,
      maxQueuePairs: this.maxQueuePairs,
      mtu: this.mtu,
    });
  }

  readConfig(offset: number, data: Uint8Array): void {
    data.fill(0);
    const cfg = this.config();
    if (!Number.isInteger(offset) || offset < 0 || offset >= cfg.length) return;
    data.set(cfg.subarray(offset, Math.min(offset + data.length, cfg.length)));
  }

  /** The modern driver changes nothing through config space (the MAC goes through CTRL_MAC_ADDR). */
  writeConfig(_offset: number, _data: Uint8Array): void {}

  /** Link up/down (VIRTIO_NET_S_LINK_UP); the driver gets a config-change interrupt. */
  setLink(up: boolean): void {
    if (this.link === up) return;
    this.link = up;
    this.configChanged();
  }

  /** Asks the guest to announce itself (gratuitous ARP after a move), when it negotiated GUEST_ANNOUNCE. */
  announce(): void {
    if ((this.features & NetFeature.GUEST_ANNOUNCE) === 0n || !this.active) return;
    this.announcing = true;
    this.configChanged();
  }

  private configChanged(): void {
    (this.activation?.interrupt ?? this.configInterrupt)?.signalConfigChange();
  }

  // ---- NetControl (control queue) ----
  setMac(mac: Uint8Array): void {
    this.mac = mac.slice(0, 6);
  }
  ackAnnounce(): void {
    this.announcing = false;
  }
  setQueuePairs(n: number): void {
    this.activePairs = n;
    this.opts.backend.setActiveQueuePairs?.(n);
    this.logger?.debug({ device: this.id, pairs: n }, 'queue pairs set');
    for (const p of this.pairs.slice(0, n)) p.rx.process();
  }
  setGuestOffloads(bits: bigint): void {
    this.guestOffloads = bits;
    const F = NetFeature;
    try {
      this.opts.backend.setGuestOffloads({
        csum: (bits & F.GUEST_CSUM) !== 0n,
        tso4: (bits & F.GUEST_TSO4) !== 0n,
        tso6: (bits & F.GUEST_TSO6) !== 0n,
        ecn: (bits & F.GUEST_ECN) !== 0n,
        ufo: (bits & F.GUEST_UFO) !== 0n,
      });
    } catch (err) {
      this.logger?.warn({ err, device: this.id }, 'setting backend offloads failed');
    }
  }

  activate(a: VirtioActivation): void {
    this.stopQueues();
    if (this.destroyed) return;
    this.activation = a;
    this.elu ??= performance.eventLoopUtilization();
    this.features = a.features;
    this.negotiated = a.features;
    const b = this.opts.backend;
    const log = this.logger?.child({ device: this.id });
    const needsReset = (reason: string): void => {
      this.logLimit.log('reset', (suppressed) =>
        log?.warn({ reason, suppressed }, `driver error; device needs reset${suppressedNote(suppressed)}`),
      );
      a.needsReset(reason);
    };
    const onBackendError = (err: NetBackendError): void =>
      void this.logLimit.log('backend', (suppressed) =>
        log?.warn({ err, suppressed }, `backend I/O failed; frame dropped${suppressedNote(suppressed)}`),
      );
    const restored = this.restored;
    this.restored = undefined;
    // Until VQ_PAIRS_SET only the first pair is used (§5.1.6.5.5).
    this.activePairs =
      (a.features & NetFeature.MQ) !== 0n ? Math.min(restored?.activePairs ?? 1, this.maxQueuePairs) : 1;
    b.setActiveQueuePairs?.(this.activePairs);
    this.setGuestOffloads((restored?.guestOffloads ?? GUEST_OFFLOAD_MASK) & a.features);
    const mergeable = (a.features & NetFeature.MRG_RXBUF) !== 0n;
    const linkUp = (): boolean => this.link;
    const pairCount = Math.min(this.maxQueuePairs, Math.floor(a.queues.length / 2));
    for (let i = 0; i < pairCount; i++) {
      const metrics = this.metrics.pair(i);
      const pair: Pair = { fd: b.fd(i), index: i } as Pair;
      const common = {
        memory: a.memory,
        backend: b,
        backendQueue: i,
        interrupt: a.interrupt,
        metrics,
        linkUp,
        needsReset,
        defer: this.defer,
        onBackendError,
      };
      pair.rx = new RxHandler({
        ...common,
        queue: a.queues[2 * i],
        limiter: this.rxLimiter,
        mergeable,
        watch: (on) => this.watchBackend(pair, on),
        setTimer: (ms, cb) => this.loop.setTimer(ms, cb),
      });
      pair.tx = new TxHandler({ ...common, queue: a.queues[2 * i + 1], limiter: this.txLimiter });
      this.pairs.push(pair);
      this.onQueueEvent(a, 2 * i, () => {
        metrics.rxKicks++;
        pair.rx.process();
      });
      this.onQueueEvent(a, 2 * i + 1, () => {
        metrics.txKicks++;
        this.serveTx(pair);
      });
    }
    const ctrlIndex = 2 * this.maxQueuePairs;
    if ((a.features & NetFeature.CTRL_VQ) !== 0n && a.queues[ctrlIndex]) {
      const ctrl = new CtrlHandler({
        queue: a.queues[ctrlIndex],
        memory: a.memory,
        interrupt: a.interrupt,
        control: this,
        metrics: this.metrics.ctrl,
        needsReset,
      });
      this.ctrl = ctrl;
      this.onQueueEvent(a, ctrlIndex, () => ctrl.process());
    }
    log?.debug({ features: `0x${a.features.toString(16)}`, mergeable, pairs: pairCount }, 'virtio-net activated');
    // Buffers may have been made available before DRIVER_OK; frames may be waiting.
    for (const p of this.pairs) {
      p.tx.process();
      p.rx.process();
    }
    this.ctrl?.process();
  }

  private onQueueEvent(a: VirtioActivation, i: number, cb: () => void): void {
    const ev = a.queueEvents[i];
    if (!ev) return;
    this.watches.push(
      this.loop.watch(ev.fd, { readable: true }, () => {
        ev.read();
        cb();
      }),
    );
  }

  /**
   * A TX kick: sends what the driver queued, then reads what the backend has for the guest
   * right away (a tap answers a TCP segment within the write: the ACK is usually waiting),
   * and only then raises the interrupts, so one guest interrupt covers both the TX
   * completions and the new RX frames instead of two.
   */
  private serveTx(p: Pair): void {
    p.tx.process(false);
    p.rx.process(false);
    p.tx.signal();
    p.rx.signal();
  }

  /** Watches (or stops watching) a pair's backend fd for readability; idempotent. */
  private watchBackend(p: Pair, on: boolean): void {
    if (on === (p.watch !== undefined)) return;
    if (!on) {
      p.watch!.dispose();
      p.watch = undefined;
      return;
    }
    if (p.fd < 0) return;
    try {
      p.watch = this.loop.watch(p.fd, { readable: true }, () => {
        this.metrics.pair(p.index).rxWakeups++;
        p.rx.process();
      });
    } catch (err) {
      this.logger?.warn({ err, device: this.id, fd: p.fd }, 'cannot watch the backend fd');
    }
  }

  /** Serves RX / TX of pair `i` now (tests; what the notifications do). */
  processRx(i = 0): void {
    this.pairs[i]?.rx.process();
  }
  processTx(i = 0): void {
    this.pairs[i]?.tx.process();
  }

  reset(): void {
    this.stopQueues();
    this.features = 0n;
    this.rxMode = defaultRxMode();
    this.macTable = { unicast: [], multicast: [] };
    this.mac = this.opts.mac.slice();
    this.announcing = false;
    this.activePairs = 1;
    try {
      this.opts.backend.setActiveQueuePairs?.(1);
      this.opts.backend.setGuestOffloads({ csum: false, tso4: false, tso6: false, ecn: false, ufo: false });
    } catch {
      /* closed */
    }
  }

  private stopQueues(): void {
    for (const w of this.watches) w.dispose();
    this.watches = [];
    for (const p of this.pairs) {
      p.rx.stop();
      p.tx.stop();
      p.watch?.dispose();
      p.watch = undefined;
    }
    this.pairs = [];
    this.ctrl?.stop();
    this.ctrl = undefined;
    this.activation = undefined;
    this.rxLimiter.dispose();
    this.txLimiter.dispose();
  }

  // ---- persisted state (core/state; the transport nests it in its own) ----
  saveState(): NetState {
    return {
      mac: this.mac.slice(),
      linkUp: this.link,
      announce: this.announcing,
      activePairs: this.activePairs,
      guestOffloads: this.guestOffloads,
      rxMode: { ...this.rxMode },
      macTable: { unicast: [...this.macTable.unicast], multicast: [...this.macTable.multicast] },
    };
  }

  checkState(s: NetState): void {
    if (s.activePairs > this.maxQueuePairs)
      throw new VirtioNetError(
        'State',
        `it uses ${s.activePairs} queue pairs, this device has ${this.maxQueuePairs}`,
        {},
      );
  }

  /** Applies a validated state; the transport calls it before it re-activates the device. */
  loadState(s: NetState): void {
    this.mac = s.mac;
    this.link = s.linkUp;
    this.announcing = s.announce;
    this.activePairs = s.activePairs;
    this.guestOffloads = s.guestOffloads;
    this.restored = { activePairs: s.activePairs, guestOffloads: s.guestOffloads };
    this.rxMode = { ...s.rxMode };
    this.macTable = { unicast: s.macTable.unicast, multicast: s.macTable.multicast };
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    const elu = this.elu && performance.eventLoopUtilization(this.elu);
    const eventLoop = elu && {
      utilization: Number(elu.utilization.toFixed(3)),
      activeMs: Math.round(elu.active),
      idleMs: Math.round(elu.idle),
    };
    this.logger?.info(
      { negotiated: `0x${this.negotiated.toString(16)}`, eventLoop, ...this.metrics.snapshot() },
      'virtio-net statistics',
    );
    this.stopQueues();
    this.opts.backend.close();
  }
}
