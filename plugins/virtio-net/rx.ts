import type { Disposable } from '../../core/bus/bus.js';
import type { DescriptorChain } from '../../core/virtio/virtio.js';
import { ChainWriter } from '../virtio/chain-io.js';
import { ServedQueue } from '../virtio/served-queue.js';
import { NetBackendError } from './backends/errors.js';
import { ETH_HLEN, MAX_FRAME_WITH_HDR, QUEUE_BUDGET, VNET_HDR_SIZE } from './constants.js';
import { setNumBuffers } from './header.js';
import { copyToBuffers, RegionCache } from './iovec.js';
import { timeHandler } from './metrics.js';
import type { NetQueueDeps } from './queue-deps.js';

/** What the RX handler needs: the common queue deps plus backend watching and timers. */
export interface RxDeps extends NetQueueDeps {
  /** VIRTIO_NET_F_MRG_RXBUF negotiated: a frame may span several chains. */
  readonly mergeable: boolean;
  /** Start/stop watching the backend fd for readability. */
  readonly watch: (on: boolean) => void;
  /** Arms a one-shot timer (backoff after backend errors). */
  readonly setTimer: (ms: number, cb: () => void) => Disposable;
}

const RX_BACKOFF_MIN_MS = 50;
const RX_BACKOFF_MAX_MS = 5000;

/**
 * Moves frames from the backend into one RX queue. At most one frame waits on the
 * host side (read, not yet delivered): when the guest has no buffers the handler
 * stops watching the backend and asks for a queue notification instead, so
 * neither a busy loop nor an unbounded buffer can build up; the kernel's tap/socket
 * queue holds the rest. Popped chains not yet used stay in a pool (bounded by the
 * queue size), since a mergeable frame may need several of them.
 * Frames: header (12 bytes, num_buffers set here) + Ethernet frame; with a headerless
 * backend a zero header (no offloads) is put in front.
 */
export class RxHandler {
  private readonly scratch = new Uint8Array(MAX_FRAME_WITH_HDR + 1);
  /** Bytes (header included) of the frame waiting in scratch; 0 when none. */
  private pending = 0;
  private charged = false;
  private pool: DescriptorChain[] = [];
  private backoff?: Disposable;
  private backoffMs = RX_BACKOFF_MIN_MS;
  private deferred = false;
  private readonly regions = new RegionCache();
  /** The region views may be used in this run (guest memory open). */
  private direct = false;
  private readonly served: ServedQueue;

  constructor(private readonly d: RxDeps) {
    this.served = new ServedQueue({
      ...d,
      label: `RX queue ${d.queue.index}`,
      onStop: () => this.release(),
      onInterrupt: () => d.metrics.interrupts++,
    });
  }

  /** A frame is waiting for guest buffers (or the rate limiter). */
  get holding(): boolean {
    return this.pending > 0;
  }
  get pooledChains(): number {
    return this.pool.length;
  }

  /**
   * One wakeup (backend readable, RX queue notified, limiter ready, backoff over); `signal` false leaves the interrupt
   * to the caller's signal().
   */
  process(signal = true): void {
    if (this.served.stopped || this.backoff) return;
    timeHandler(this.d.metrics, () => this.served.serve(() => this.serve(), signal));
  }

  /** Reads frames and delivers them until the budget is spent or the backend, the guest or the limiter must wait. */
  private serve(): void {
    const q = this.d.queue;
    let handled = 0;
    this.direct = this.regions.usable(this.d.memory);
    for (;;) {
      if (handled >= QUEUE_BUDGET) {
        if (!this.deferred) {
          this.deferred = true;
          this.d.defer(() => {
            this.deferred = false;
            this.process();
          });
        }
        break;
      }
      if (this.pending === 0 && !this.readFrame()) break;
      handled++;
      if (this.pending === 0) continue; // dropped while reading
      if (!this.d.linkUp()) {
        this.drop();
        continue;
      }
      if (!this.charged) {
        if (!this.served.consume(this.d.limiter, this.pending - VNET_HDR_SIZE, () => this.process())) {
          this.d.metrics.rxThrottled++;
          this.d.watch(false);
          break;
        }
        this.charged = true;
      }
      const r = this.deliver();
      if (r === 'nobuf') {
        this.d.metrics.rxNoBuffers++;
        this.d.watch(false);
        // Buffers made available since the last pop: go on; else the driver's kick wakes us.
        if (q.enableNotification()) continue;
        break;
      }
      if (r === 'delivered') q.disableNotification();
    }
  }

  /** Reads the next frame into scratch; false when none is waiting (the fd is then watched). */
  private readFrame(): boolean {
    const b = this.d.backend;
    const hdr = b.vnetHeader ? 0 : VNET_HDR_SIZE;
    let n: number;
    try {
      n = b.recv(this.d.backendQueue, this.scratch.subarray(hdr));
    } catch (err) {
      if (!(err instanceof NetBackendError)) throw err;
      this.d.metrics.rxErrors++;
      this.d.onBackendError?.(err);
      this.d.watch(false);
      const ms = this.backoffMs;
      this.backoffMs = Math.min(RX_BACKOFF_MAX_MS, this.backoffMs * 2);
      this.backoff = this.d.setTimer(ms, () => {
        this.backoff = undefined;
        this.process();
      });
      return false;
    }
    if (n < 0) {
      this.backoffMs = RX_BACKOFF_MIN_MS;
      this.d.watch(true);
      return false;
    }
    const total = n + hdr;
    if (total > MAX_FRAME_WITH_HDR || total < VNET_HDR_SIZE + ETH_HLEN) {
      this.d.metrics.rxDropped++;
      return true; // pending stays 0: read on
    }
    if (hdr) this.scratch.fill(0, 0, VNET_HDR_SIZE);
    this.pending = total;
    return true;
  }

  private drop(): void {
    this.d.metrics.rxDropped++;
    this.pending = 0;
    this.charged = false;
  }

  /** Writes the pending frame into guest buffers. */
  private deliver(): 'delivered' | 'dropped' | 'nobuf' {
    const need = this.pending;
    const frame = this.scratch.subarray(0, need);
    if (!this.d.mergeable) {
      const chain = this.nextChain();
      if (!chain) return 'nobuf';
      if (chain.writableLength < need) {
        // This buffer cannot hold this frame; it may hold the next one.
        this.pool.unshift(chain);
        this.drop();
        return 'dropped';
      }
      setNumBuffers(frame, 1);
      this.copy(chain, frame);
      this.used(chain.head, need);
      this.finish(need);
      return 'delivered';
    }
    let room = this.pool.reduce((s, ch) => s + ch.writableLength, 0);
    while (room < need) {
      const chain = this.nextChain(true);
      if (!chain) {
        if (this.pool.length >= this.d.queue.size) {
          // The whole ring cannot hold this frame: it never will.
          this.drop();
          return 'dropped';
        }
        return 'nobuf';
      }
      this.pool.push(chain);
      room += chain.writableLength;
    }
    let count = 0;
    for (let r = 0; r < need; count++) r += this.pool[count].writableLength;
    setNumBuffers(frame, count);
    let off = 0;
    for (const chain of this.pool.splice(0, count)) {
      const n = Math.min(chain.writableLength, need - off);
      this.copy(chain, frame.subarray(off, off + n));
      off += n;
      this.used(chain.head, n);
    }
    this.finish(need);
    return 'delivered';
  }

  /** Writes `data` at the start of the chain's writable buffers (through the region views when possible). */
  private copy(chain: DescriptorChain, data: Uint8Array): void {
    if (this.direct && copyToBuffers(this.regions, this.d.memory, chain.writable, data)) return;
    new ChainWriter(this.d.memory, chain).write(data);
  }

  /** A usable chain from the pool or the ring; chains that can hold no header go back empty. */
  private nextChain(fresh = false): DescriptorChain | undefined {
    for (;;) {
      const chain = (!fresh && this.pool.shift()) || this.d.queue.pop();
      if (!chain) return undefined;
      if (chain.writableLength >= VNET_HDR_SIZE) return chain;
      this.d.metrics.rxBadChains++;
      this.used(chain.head, 0);
    }
  }

  private used(head: number, len: number): void {
    this.served.addUsed(head, len);
  }

  private finish(bytes: number): void {
    if (this.scratch[1] !== 0) this.d.metrics.rxGso++;
    this.d.metrics.rxFrames++;
    this.d.metrics.rxBytes += bytes - VNET_HDR_SIZE;
    this.pending = 0;
    this.charged = false;
  }

  /** Raises the used-buffer interrupt if frames went in and the driver wants to hear of it. */
  signal(): void {
    this.served.signal();
  }

  /** Stops (device reset, driver error): nothing more touches the queue; the waiting frame is dropped. */
  stop(): void {
    this.served.stop();
  }

  /** What stopping drops: the backend watch, timers, the waiting frame, pooled chains. */
  private release(): void {
    this.d.watch(false);
    this.backoff?.dispose();
    this.backoff = undefined;
    if (this.pending) this.d.metrics.rxDropped++;
    this.pending = 0;
    this.pool = [];
  }
}
