import type { Disposable } from '../../core/bus/bus.js';
import type { EventLoop } from '../../core/events/event-loop.js';
import type { Logger } from '../../core/logger.js';
import type { Snapshottable } from '../../core/state/snapshottable.js';
import {
  VIRTIO_F_RING_EVENT_IDX,
  VIRTIO_F_RING_INDIRECT_DESC,
  VIRTIO_F_VERSION_1,
  VirtioDeviceType,
  type DescriptorChain,
  type VirtioActivation,
  type VirtioDevice,
} from '../../core/virtio/virtio.js';
import { ChainReader, ChainWriter } from '../virtio/chain-io.js';
import { ServedQueue } from '../virtio/served-queue.js';
import {
  CHAINS_PER_TURN,
  HDR_SIZE,
  MAX_PKT_PAYLOAD,
  Queue,
  readVsockConfig,
  VSOCK_CONFIG_SIZE,
  VSOCK_EVENT_TRANSPORT_RESET,
} from './constants.js';
import { VirtioVsockError } from './errors.js';
import { zeroVsockMetrics, type VsockMetrics } from './metrics.js';
import { VsockMuxer } from './muxer.js';
import { decodeHeader, encodeHeader } from './packet.js';
import { VsockStateSpec, type VsockState } from './state.js';

/** What a VirtioVsock is built with. */
export interface VirtioVsockOptions {
  readonly id: string;
  /** The guest's context id (3 .. 2^32 - 2). */
  readonly guestCid: bigint;
  /** The host side's Unix socket path (Firecracker's `uds_path`). */
  readonly udsPath: string;
  readonly queueSize?: number;
  /** Runs `cb` on a later loop turn (setImmediate); replaceable in tests. */
  readonly defer?: (cb: () => void) => void;
}

/**
 * A virtio socket device (virtio 1.2 §5.10, device type 19), stream sockets between the guest and
 * host processes over Unix sockets (VsockMuxer), independent of its transport. The TX queue's packets
 * are validated (header inside the chain, payload length inside the chain and at most 64 KiB,
 * device-readable only) before the muxer sees them; RX buffers must be device-writable and hold a
 * header. After a restore (connections cannot survive one) the driver gets a TRANSPORT_RESET event.
 */
export class VirtioVsock implements VirtioDevice, Snapshottable<VsockState> {
  readonly deviceType = VirtioDeviceType.vsock;
  readonly queueMaxSizes: readonly number[];
  readonly deviceFeatures = VIRTIO_F_VERSION_1 | VIRTIO_F_RING_EVENT_IDX | VIRTIO_F_RING_INDIRECT_DESC;
  readonly configSize = VSOCK_CONFIG_SIZE;
  readonly stateSpec = VsockStateSpec;
  readonly metrics: VsockMetrics = zeroVsockMetrics();
  readonly muxer: VsockMuxer;
  private activation?: VirtioActivation;
  private served: ServedQueue[] = [];
  private watches: Disposable[] = [];
  private rxScheduled = false;
  /** A restore happened: tell the driver its connections are gone. */
  private resetEventDue = false;
  private readonly defer: (cb: () => void) => void;

  constructor(
    private readonly opts: VirtioVsockOptions,
    private readonly loop: EventLoop,
    logger?: Logger,
  ) {
    if (opts.guestCid < 3n || opts.guestCid > 0xffff_fffen)
      throw new VirtioVsockError('Config', `${opts.id}: guest CID ${opts.guestCid} must be in 3..4294967294`, {});
    const size = opts.queueSize ?? 256;
    if (!Number.isInteger(size) || size < 4 || size > 32768 || (size & (size - 1)) !== 0)
      throw new VirtioVsockError('Config', `${opts.id}: queueSize ${size} must be a power of two in 4..32768`, {});
    this.queueMaxSizes = [size, size, size];
    this.defer = opts.defer ?? ((cb) => void setImmediate(cb));
    this.muxer = new VsockMuxer({
      guestCid: opts.guestCid,
      udsPath: opts.udsPath,
      metrics: this.metrics,
      logger,
      setTimer: (ms, cb) => loop.setTimer(ms, cb),
      wake: () => this.scheduleRx(),
    });
  }

  get id(): string {
    return this.opts.id;
  }

  /** Flat monotonic counters (C4) plus the open connections. */
  counters(): Record<string, number> {
    return { ...this.metrics, connections: this.muxer.connectionCount };
  }

  /** Starts listening on the Unix socket. */
  listen(): Promise<void> {
    return this.muxer.listen();
  }

  readConfig(offset: number, data: Uint8Array): void {
    readVsockConfig(this.opts.guestCid, offset, data);
  }

  /** guest_cid is the device's: writes are ignored. */
  writeConfig(_offset: number, _data: Uint8Array): void {}

  activate(a: VirtioActivation): void {
    this.stop();
    this.activation = a;
    const labels = ['rx queue', 'tx queue', 'event queue'];
    this.served = a.queues
      .slice(0, 3)
      .map(
        (queue, i) => new ServedQueue({ queue, interrupt: a.interrupt, needsReset: a.needsReset, label: labels[i] }),
      );
    const handlers = [() => this.processRx(), () => this.processTx(), () => this.processEvent()];
    a.queueEvents.slice(0, 3).forEach((ev, i) => {
      this.watches.push(
        this.loop.watch(ev.fd, { readable: true }, () => {
          ev.read();
          handlers[i]!();
        }),
      );
    });
    this.muxer.active = true;
    this.processTx();
    this.processEvent();
  }

  /** Serves every queue now (what their notifications do). */
  process(): void {
    this.processTx();
    this.processRx();
    this.processEvent();
  }

  private scheduleRx(): void {
    if (this.rxScheduled) return;
    this.rxScheduled = true;
    this.defer(() => {
      this.rxScheduled = false;
      this.processRx();
    });
  }

  /** Guest → host: each TX chain is validated and handed to the muxer, then returned. */
  processTx(): void {
    const s = this.served[Queue.tx];
    const a = this.activation;
    if (!s || !a || s.stopped) return;
    let handled = 0;
    s.serve(() => {
      const q = s.queue;
      do {
        q.disableNotification();
        for (let c = q.pop(); c; c = q.pop()) {
          this.txChain(a, c);
          s.addUsed(c.head, 0);
          if (++handled >= CHAINS_PER_TURN) {
            this.defer(() => this.processTx());
            return;
          }
        }
      } while (q.enableNotification());
    });
    this.processRx();
  }

  private txChain(a: VirtioActivation, c: DescriptorChain): void {
    if (c.writableLength > 0 || c.readableLength < HDR_SIZE) {
      this.metrics.droppedPackets++;
      return;
    }
    const r = new ChainReader(a.memory, c);
    const hdr = decodeHeader(r.read(HDR_SIZE));
    if (hdr.len > MAX_PKT_PAYLOAD || hdr.len > r.remaining) {
      this.metrics.droppedPackets++;
      return;
    }
    this.muxer.handleTx({ hdr, data: r.read(hdr.len) });
  }

  /** Host → guest: fills RX buffers while the muxer has packets. */
  processRx(): void {
    const s = this.served[Queue.rx];
    const a = this.activation;
    if (!s || !a || s.stopped) return;
    let handled = 0;
    s.serve(() => {
      const q = s.queue;
      while (this.muxer.hasRx()) {
        const c = q.pop();
        if (!c) {
          // no buffer: wait for the driver's kick (and do not miss one added meanwhile)
          if (q.enableNotification()) continue;
          return;
        }
        s.addUsed(c.head, this.rxChain(a, c));
        if (++handled >= CHAINS_PER_TURN) {
          this.scheduleRx();
          return;
        }
      }
    });
  }

  private rxChain(a: VirtioActivation, c: DescriptorChain): number {
    if (c.readableLength > 0 || c.writableLength < HDR_SIZE) {
      this.metrics.droppedPackets++;
      return 0; // not a receive buffer: given back empty (the driver drops it)
    }
    const p = this.muxer.nextRx(Math.min(c.writableLength - HDR_SIZE, MAX_PKT_PAYLOAD));
    if (!p) return 0;
    const w = new ChainWriter(a.memory, c);
    w.write(encodeHeader(p.hdr));
    w.write(p.data);
    this.metrics.rxPackets++;
    return w.written;
  }

  /** The event queue: buffers are kept until there is an event (only TRANSPORT_RESET, after a restore). */
  processEvent(): void {
    const s = this.served[Queue.event];
    const a = this.activation;
    if (!s || !a || s.stopped || !this.resetEventDue) return;
    s.serve(() => {
      const c = s.queue.pop();
      if (!c) return;
      this.resetEventDue = false;
      if (c.writableLength < 4) {
        s.addUsed(c.head, 0);
        return;
      }
      const w = new ChainWriter(a.memory, c);
      w.writeU32(VSOCK_EVENT_TRANSPORT_RESET);
      s.addUsed(c.head, w.written);
    });
  }

  reset(): void {
    this.stop();
  }

  private stop(): void {
    this.muxer.active = false;
    this.muxer.closeAll();
    for (const w of this.watches) w.dispose();
    this.watches = [];
    for (const s of this.served) s.stop();
    this.served = [];
    this.activation = undefined;
  }

  /** Connections are not saved (they cannot survive a restore): the restored driver gets TRANSPORT_RESET. */
  saveState(): VsockState {
    return { guestCid: Number(this.opts.guestCid), queueSize: this.queueMaxSizes[0]! };
  }

  checkState(s: VsockState): void {
    if (BigInt(s.guestCid) !== this.opts.guestCid)
      throw new VirtioVsockError(
        'State',
        `it was saved with guest CID ${s.guestCid}, this device has ${this.opts.guestCid}`,
        {},
      );
    if (s.queueSize !== this.queueMaxSizes[0])
      throw new VirtioVsockError(
        'State',
        `it was saved with queueSize ${s.queueSize}, this device has ${this.queueMaxSizes[0]}`,
        {},
      );
  }

  loadState(_s: VsockState): void {
    this.muxer.closeAll();
    this.resetEventDue = true;
  }

  /** Stops serving and listening for good (the plugin's teardown). */
  async destroy(): Promise<void> {
    this.stop();
    await this.muxer.destroy();
  }
}
