import type { DescriptorChain } from '../../core/virtio/virtio.js';
import { ChainReader } from '../virtio/chain-io.js';
import { ServedQueue } from '../virtio/served-queue.js';
import { NetBackendError } from './backends/errors.js';
import { ETH_HLEN, MAX_FRAME_WITH_HDR, QUEUE_BUDGET, VNET_HDR_GSO_NONE, VNET_HDR_SIZE } from './constants.js';
import { completeChecksum, decodeHeader, needsChecksum } from './header.js';
import { HostIovec } from './iovec.js';
import { timeHandler } from './metrics.js';
import type { NetQueueDeps } from './queue-deps.js';

/** What the TX handler needs (the common queue deps). */
export type TxDeps = NetQueueDeps;

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
  /** A chain the rate limiter holds back (popped, validated, not yet sent). */
  private held?: DescriptorChain;
  private deferred = false;
  private readonly iov = new HostIovec();
  private readonly served: ServedQueue;

  constructor(private readonly d: TxDeps) {
    this.served = new ServedQueue({
      ...d,
      label: `TX queue ${d.queue.index}`,
      onStop: () => this.release(),
      onInterrupt: () => {
        d.metrics.interrupts++;
        d.metrics.txInterrupts++;
      },
    });
  }

  get throttled(): boolean {
    return this.held !== undefined;
  }

  /** One wakeup (queue notification, limiter ready); `signal` false leaves the interrupt to the caller's signal(). */
  process(signal = true): void {
    if (this.served.stopped) return;
    timeHandler(this.d.metrics, () => this.served.serve(() => this.serve(), signal));
  }

  /** Sends chains until the ring is empty, the budget is spent or the limiter holds a frame back. */
  private serve(): void {
    const q = this.d.queue;
    let handled = 0;
    if (this.held) {
      if (!this.transmit(this.held)) return;
      this.held = undefined;
    }
    do {
      q.disableNotification();
      for (let chain = q.pop(); chain; chain = q.pop()) {
        if (!this.valid(chain)) this.used(chain.head);
        else if (!this.transmit(chain)) {
          this.held = chain;
          return;
        }
        if (++handled >= QUEUE_BUDGET) {
          if (!this.deferred) {
            this.deferred = true;
            this.d.defer(() => {
              this.deferred = false;
              this.process();
            });
          }
          return;
        }
      }
    } while (q.enableNotification());
  }

  /** Room for header + Ethernet header, at most a 64 KiB GSO frame; else counted as malformed. */
  private valid(chain: DescriptorChain): boolean {
    const len = chain.readableLength;
    if (len >= VNET_HDR_SIZE + ETH_HLEN && len <= MAX_FRAME_WITH_HDR) return true;
    this.d.metrics.txMalformed++;
    this.d.metrics.txDropped++;
    return false;
  }

  /** Charges the limiter and sends; false when the limiter holds the frame back. */
  private transmit(chain: DescriptorChain): boolean {
    const m = this.d.metrics;
    const bytes = chain.readableLength - VNET_HDR_SIZE;
    if (!this.served.consume(this.d.limiter, bytes, () => this.process())) {
      m.txThrottled++;
      return false;
    }
    if (!this.d.linkUp()) {
      m.txDropped++;
    } else {
      try {
        const r = this.send(chain);
        if (r === undefined) {
          m.txDropped++;
        } else if (r.sent) {
          m.txFrames++;
          m.txBytes += bytes;
          if (r.gso) m.txGso++;
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

  /**
   * Hands one frame to the backend: gathered straight from guest RAM (writev) when the
   * backend carries the header and can gather, else copied out (and, for a headerless
   * backend, checked, checksummed and stripped of its header). undefined: not sendable.
   */
  private send(chain: DescriptorChain): { sent: boolean; gso: boolean } | undefined {
    const b = this.d.backend;
    if (b.vnetHeader && b.sendv && this.iov.fill(this.d.memory, chain.readable)) {
      // The tap reads the header itself (and ignores num_buffers); the kernel validates it.
      const gso = this.iov.secondByte > 0; // gso_type, for the counters only
      return { sent: b.sendv(this.d.backendQueue, this.iov), gso };
    }
    const frame = new ChainReader(this.d.memory, chain).read(chain.readableLength);
    const wire = this.toWire(frame);
    if (!wire) return undefined;
    return { sent: b.send(this.d.backendQueue, wire), gso: frame[1] !== VNET_HDR_GSO_NONE };
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
    this.served.addUsed(head, 0);
  }

  /** Raises the used-buffer interrupt if sent chains went back and the driver wants to hear of it. */
  signal(): void {
    this.served.signal();
  }

  /** Stops (device reset, driver error): nothing more touches the queue; a held frame is dropped. */
  stop(): void {
    this.served.stop();
  }

  /** What stopping drops: the held chain (ServedQueue cancels the limiter wait). */
  private release(): void {
    this.held = undefined;
  }
}
