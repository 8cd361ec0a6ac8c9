import type { Readable, Writable } from 'node:stream';
import type { DropCounter, SerialRxPort } from './console.js';

/**
 * Feeds a readable stream into the UART with backpressure: a chunk the RX FIFO
 * cannot take whole is kept (at most one chunk, bounded by the stream's read
 * size) and the stream is paused until the UART reports room again.
 */
export class StreamInputPump {
  private pending: Uint8Array | undefined;
  private stopped = false;
  private readonly onData = (chunk: Buffer | string): void => {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    const filtered = this.filter ? this.filter(bytes) : bytes;
    if (filtered.length === 0) return;
    this.pending = this.pending ? Buffer.concat([this.pending, filtered]) : filtered;
    this.drain();
  };

  constructor(
    private readonly stream: Readable,
    private readonly rx: SerialRxPort,
    private readonly filter?: (bytes: Uint8Array) => Uint8Array,
  ) {}

  start(): void {
    this.stream.on('data', this.onData);
    this.stream.resume();
  }

  stop(): void {
    this.stopped = true;
    this.pending = undefined;
    this.stream.off('data', this.onData);
    this.stream.pause();
  }

  /** Bytes held back waiting for FIFO room (for tests). */
  get held(): number {
    return this.pending?.length ?? 0;
  }

  private drain(): void {
    if (this.stopped || !this.pending) return;
    const taken = this.rx.receive(this.pending);
    if (taken >= this.pending.length) {
      this.pending = undefined;
      this.stream.resume();
      return;
    }
    this.pending = this.pending.subarray(taken);
    this.stream.pause();
    this.rx.onRxSpace(() => this.drain());
  }
}

/**
 * Collects transmitted bytes and hands them on in batches: when 4 KiB are
 * collected or on the next turn of the event loop, so a guest printing one byte
 * per exit does not cost one write per byte.
 */
export class OutputBatcher {
  private readonly buf = Buffer.alloc(4096);
  private len = 0;
  private scheduled = false;

  constructor(private readonly sink: (bytes: Buffer) => void) {}

  push(byte: number): void {
    this.buf[this.len++] = byte;
    if (this.len === this.buf.length) {
      this.flush();
    } else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        this.flush();
      });
    }
  }

  flush(): void {
    if (this.len === 0) return;
    const out = Buffer.from(this.buf.subarray(0, this.len));
    this.len = 0;
    this.sink(out);
  }
}

/**
 * A sink writing to a stream that drops (and counts) output once `maxQueued`
 * bytes wait in the stream: a guest flooding the console cannot grow the VMM's memory.
 */
export function writableSink(w: Writable, maxQueued: number, dropped: DropCounter): (bytes: Buffer) => void {
  return (bytes) => {
    if (w.destroyed || !w.writable || w.writableLength >= maxQueued) {
      dropped(bytes.length);
      return;
    }
    w.write(bytes);
  };
}
