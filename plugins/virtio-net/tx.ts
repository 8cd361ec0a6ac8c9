import type { Disposable } from '../../core/bus/bus.js';
import type { GuestMemory } from '../../core/memory/guest-memory.js';
import type { RateLimiter } from '../../core/ratelimit/rate-limiter.js';
import type { DescriptorChain, VirtQueue, VirtioInterrupt } from '../../core/virtio/virtio.js';
import { ChainReader } from '../virtio/chain-io.js';
import type { NetBackend } from './backends/backend.js';
import { NetBackendError } from './backends/errors.js';
import { ETH_HLEN, MAX_FRAME_WITH_HDR, QUEUE_BUDGET, VNET_HDR_GSO_NONE, VNET_HDR_SIZE } from './constants.js';
import { completeChecksum, decodeHeader, needsChecksum } from './header.js';
import type { NetQueueMetrics } from './metrics.js';

export interface TxDeps {
  readonly queue: VirtQueue;
  readonly memory: GuestMemory;
  readonly backend: NetBackend;
  readonly backendQueue: number;
  readonly interrupt: VirtioInterrupt;
  readonly limiter: RateLimiter;
  readonly metrics: NetQueueMetrics;
  readonly linkUp: () => boolean;
  readonly needsReset: (reason: string) => void;
  readonly defer: (cb: () => void) => void;
  readonly onBackendError?: (err: NetBackendError) => void;
}

/**
 * Sends what the driver puts in one TX queue. Each chain is header + frame in its
 * device-readable buffers; it goes back with used length 0 whatever happens to the
 * frame. Malformed chains (no room for a header, no Ethernet header, larger than
 * 65562 bytes) and frames the backend refuses are dropped and counted; only a
 * broken ring (VirtQueueError) asks for a device reset. A frame the rate limiter
 * holds back is kept (popped, unsent) until the limiter's timer wakes the queue.
 * For a headerless backend the device finishes partial checksums itself and drops
 * GSO frames (it never offers GSO to such guests).
 */
export class TxHandler {
  private held?: { chain: DescriptorChain; frame: Uint8Array };
  private waiter?: Disposable;
  private stopped = false;
  private deferred = false;
  private usedAdded = false;

  constructor(private readonly d: TxDeps) {}

  get throttled(): boolean { return this.held !== undefined; }

  process(): void {
    if (this.stopped) return;
    const q = this.d.queue;
    let handled = 0;
    try {
      if (this.held) {
        if (!this.transmit(this.held.chain, this.held.frame)) return;
        this.held = undefined;
      }
      do {
        q.disableNotification();
        for (let chain = q.pop(); chain; chain = q.pop()) {
          const frame = this.readFrame(chain);
          if (frame && !this.transmit(chain, frame)) { this.held = { chain, frame }; return; }
          if (!frame) this.used(chain.head);
          if (++handled >= QUEUE_BUDGET) {
            if (!this.deferred) { this.deferred = true; this.d.defer(() => { this.deferred = false; this.process(); }); }
            return;
          }
        }
      } while (q.enableNotification());
    } catch (err) {
      this.fail(`TX queue ${q.index}: ${(err as Error)?.message ?? String(err)}`);
    } finally {
      this.signal();
    }
  }

  /** Copies header + frame out of the chain; undefined (counted) when malformed. */
  private readFrame(chain: DescriptorChain): Uint8Array | undefined {
    const len = chain.readableLength;
    if (len < VNET_HDR_SIZE + ETH_HLEN || len > MAX_FRAME_WITH_HDR) {
      this.d.metrics.txMalformed++;
      this.d.metrics.txDropped++;
      return undefined;
    }
    return new ChainReader(this.d.memory, chain).read(len);
  }

  /** Charges the limiter and sends; false when the limiter holds the frame back. */
  private transmit(chain: DescriptorChain, frame: Uint8Array): boolean {
    const m = this.d.metrics;
    const bytes = frame.length - VNET_HDR_SIZE;
    if (!this.d.limiter.tryConsume(bytes, 1)) {
      m.txThrottled++;
      this.waiter ??= this.d.limiter.whenReady(() => { this.waiter = undefined; this.process(); }, bytes, 1);
      return false;
    }
    const wire = this.toWire(frame);
    if (!wire || !this.d.linkUp()) {
      m.txDropped++;
    } else {
      try {
        if (this.d.backend.send(this.d.backendQueue, wire)) {
          m.txFrames++;
          m.txBytes += bytes;
        } else {
          m.txDropped++;
        }
      } catch (err) {
        if (!(err instanceof NetBackendError)) throw err;
        m.txErrors++;
        m.txDropped++;
        this.d.onBackendError?.(err);
      }
    }
    this.used(chain.head);
    return true;
  }

  /** What goes to the backend: the frame as is, or without its header (checksum finished). */
  private toWire(frame: Uint8Array): Uint8Array | undefined {
    if (this.d.backend.vnetHeader) {
      frame[10] = 0; // num_buffers is RX-only
      frame[11] = 0;
      return frame;
    }
    const h = decodeHeader(frame);
    const payload = frame.subarray(VNET_HDR_SIZE);
    if (h.gsoType !== VNET_HDR_GSO_NONE) return undefined;
    if (needsChecksum(h) && !completeChecksum(payload, h.csumStart, h.csumOffset)) return undefined;
    return payload;
  }

  private used(head: number): void {
    this.d.queue.addUsed(head, 0);
    this.usedAdded = true;
  }

  private signal(): void {
    if (!this.usedAdded || this.stopped) return;
    this.usedAdded = false;
    try {
      if (this.d.queue.needsNotification()) {
        this.d.metrics.interrupts++;
        this.d.interrupt.signalUsedQueue(this.d.queue.index);
      }
    } catch (err) {
      this.fail(`TX queue ${this.d.queue.index}: ${(err as Error).message}`);
    }
  }

  private fail(reason: string): void {
    if (this.stopped) return;
    this.stop();
    this.d.needsReset(reason);
  }

  stop(): void {
    this.stopped = true;
    this.waiter?.dispose();
    this.waiter = undefined;
    this.held = undefined;
  }
}
