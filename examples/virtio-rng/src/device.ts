import { randomFillSync } from 'node:crypto';
import type { Disposable, EventLoop, Snapshottable } from 'tsvmm';
import {
  ChainWriter,
  ServedQueue,
  drainQueue,
  VIRTIO_F_RING_EVENT_IDX,
  VIRTIO_F_RING_INDIRECT_DESC,
  VIRTIO_F_VERSION_1,
  VirtioDeviceType,
  type DescriptorChain,
  type VirtioActivation,
  type VirtioDevice,
} from 'tsvmm/virtio';
import { RngStateSpec, type RngState } from './state.js';

/** At most this many bytes go into one request (Linux asks for 64 at a time; a hostile driver may ask for 4 GiB). */
export const MAX_REQUEST_BYTES = 64 * 1024;
/** Requests served per wake-up before the device yields to the event loop (the rest on the next turn). */
export const REQUESTS_PER_TURN = 256;

/** What a VirtioRng is built with. */
export interface VirtioRngOptions {
  readonly id: string;
  /** Size of the request queue (a power of two, 2..32768); default 256. */
  readonly queueSize?: number;
  /** Fills a buffer with entropy; default node:crypto randomFillSync (the host's getrandom). */
  readonly fill?: (buf: Uint8Array) => void;
  /** Runs `cb` on a later loop turn (setImmediate); replaceable in tests. */
  readonly defer?: (cb: () => void) => void;
}

/**
 * A virtio entropy device (virtio 1.2 §5.4, device type 4): one request queue, no features of its
 * own, no config space. Each chain the driver makes available must be device-writable only (§5.4.6.1);
 * the device fills it, up to MAX_REQUEST_BYTES, with bytes from the host's getrandom and returns it.
 * A chain with a device-readable buffer breaks the rules: the queue stops and the transport sets
 * DEVICE_NEEDS_RESET. It never learns its transport: the plugin hands it to whichever it selected.
 */
export class VirtioRng implements VirtioDevice, Snapshottable<RngState> {
  /** Device type 4 (entropy source). */
  readonly deviceType = VirtioDeviceType.rng;
  readonly queueMaxSizes: readonly number[];
  readonly deviceFeatures = VIRTIO_F_VERSION_1 | VIRTIO_F_RING_EVENT_IDX | VIRTIO_F_RING_INDIRECT_DESC;
  readonly configSize = 0;
  /** The schema and version of its saved state (the transport nests it in its own). */
  readonly stateSpec = RngStateSpec;
  private served?: ServedQueue;
  private activation?: VirtioActivation;
  private watch?: Disposable;
  private scheduled = false;
  private requests = 0;
  private bytes = 0;
  private readonly fill: (buf: Uint8Array) => void;
  private readonly defer: (cb: () => void) => void;

  constructor(
    private readonly opts: VirtioRngOptions,
    private readonly loop?: EventLoop,
  ) {
    const size = opts.queueSize ?? 256;
    if (!Number.isInteger(size) || size < 2 || size > 32768 || (size & (size - 1)) !== 0)
      throw new RangeError(`${opts.id}: queueSize ${size} must be a power of two in 2..32768`);
    this.queueMaxSizes = [size];
    this.fill = opts.fill ?? ((b) => randomFillSync(b));
    this.defer = opts.defer ?? ((cb) => void setImmediate(cb));
  }

  get id(): string {
    return this.opts.id;
  }

  /** Monotonic counters (requests served, bytes of entropy given) for metrics. */
  counters(): Record<string, number> {
    return { requests: this.requests, bytes: this.bytes };
  }

  /** No config space: reads give zeros. */
  readConfig(_offset: number, data: Uint8Array): void {
    data.fill(0);
  }

  /** No config space: writes are ignored. */
  writeConfig(_offset: number, _data: Uint8Array): void {}

  activate(a: VirtioActivation): void {
    this.reset();
    this.activation = a;
    this.served = new ServedQueue({ queue: a.queues[0], interrupt: a.interrupt, needsReset: a.needsReset });
    const ev = a.queueEvents[0];
    if (ev && this.loop)
      this.watch = this.loop.watch(ev.fd, { readable: true }, () => {
        ev.read();
        this.process();
      });
    this.process(); // buffers made available before DRIVER_OK
  }

  /** Serves the request queue now (what its queue notification does). */
  process(): void {
    const served = this.served;
    const a = this.activation;
    if (!served || !a || served.stopped) return;
    // drainQueue: pop, answer, return each chain, one interrupt if the driver asked; an exception
    // (a chain breaking the rules) makes served.run stop the queue and ask for a reset.
    served.run(() => {
      if (drainQueue(served.queue, (c) => this.answer(a, c), a.interrupt, REQUESTS_PER_TURN).more) this.later();
    });
  }

  /** Fills one chain; throws (stopping the queue) when the driver gave a device-readable buffer. */
  private answer(a: VirtioActivation, c: DescriptorChain): number {
    if (c.readableLength > 0 || c.readable.length > 0)
      throw new Error(`chain ${c.head} has a device-readable buffer; an entropy request must be write-only`);
    const n = Math.min(c.writableLength, MAX_REQUEST_BYTES);
    const w = new ChainWriter(a.memory, c);
    for (const view of w.slices(n)) this.fill(view);
    this.requests++;
    this.bytes += n;
    return w.written;
  }

  private later(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    this.defer(() => {
      this.scheduled = false;
      this.process();
    });
  }

  reset(): void {
    this.watch?.dispose();
    this.watch = undefined;
    this.served?.stop();
    this.served = undefined;
    this.activation = undefined;
  }

  saveState(): RngState {
    return { queueSize: this.queueMaxSizes[0]!, requests: this.requests, bytes: this.bytes };
  }

  checkState(s: RngState): void {
    if (s.queueSize !== this.queueMaxSizes[0])
      throw new Error(`it was saved with queueSize ${s.queueSize}, this device has ${this.queueMaxSizes[0]}`);
  }

  loadState(s: RngState): void {
    this.requests = s.requests;
    this.bytes = s.bytes;
  }

  /** Stops serving for good (the plugin's teardown). */
  destroy(): void {
    this.reset();
  }
}
