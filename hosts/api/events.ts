import * as fs from 'node:fs';
import type { AssembledVm } from '../../core/vmm/assemble.js';
import type { StopReason } from '../../core/lifecycle.js';
import { ApiError } from './errors.js';

/** One event as the monitor writes it (one JSON object per line, Cloud Hypervisor's event-monitor fields). */
export interface VmmEvent {
  timestamp: { secs: number; nanos: number };
  source: 'vmm' | 'vm' | 'device' | 'migration';
  event: string;
  properties: Record<string, unknown> | null;
}

/** Where the VMM's events go. */
export interface EventSink {
  emit(source: VmmEvent['source'], event: string, properties?: Record<string, unknown>): void;
  /** Follows a started VM's lifecycle: booted now, then paused, resumed, shutdown (with the reason). */
  watch(vm: AssembledVm): void;
  /** Ends the stream; resolves once what was written is flushed. */
  close(): Promise<void>;
}

/** `--event-monitor path=FILE` or `fd=N`, parsed. */
export function parseEventMonitor(spec: string): { path: string } | { fd: number } {
  const m = /^(path|fd)=(.+)$/.exec(spec);
  if (m?.[1] === 'path') return { path: m[2] };
  if (m?.[1] === 'fd' && /^\d+$/.test(m[2])) return { fd: Number(m[2]) };
  throw new ApiError('BadRequest', `--event-monitor: expected path=FILE or fd=N, got '${spec}'`);
}

const reasonText = (r: StopReason): string =>
  r.kind === 'signal' ? `signal ${r.signal}` : r.kind === 'error' ? 'error' : r.kind;

/** Upper bound of unwritten event text (a reader that stopped reading): beyond it events are dropped and counted. */
const MAX_PENDING = 1 << 20;

/**
 * Writes events as JSON lines to a file, FIFO or inherited fd without blocking the VMM: writes are queued, a reader
 * that falls more than 1 MiB behind loses events (counted in `dropped`), a write error closes the monitor.
 */
export class JsonLinesEvents implements EventSink {
  dropped = 0;
  private readonly stream: fs.WriteStream;
  private broken = false;

  constructor(target: { path: string } | { fd: number }, clock: () => bigint = process.hrtime.bigint) {
    this.clock = clock;
    this.stream =
      'path' in target
        ? fs.createWriteStream(target.path, { flags: 'a' })
        : fs.createWriteStream('', { fd: target.fd, autoClose: false });
    this.stream.on('error', () => (this.broken = true));
  }
  private readonly clock: () => bigint;
  private readonly t0 = process.hrtime.bigint();

  emit(source: VmmEvent['source'], event: string, properties?: Record<string, unknown>): void {
    if (this.broken) return;
    if (this.stream.writableLength > MAX_PENDING) {
      this.dropped++;
      return;
    }
    const ns = this.clock() - this.t0;
    const e: VmmEvent = {
      timestamp: { secs: Number(ns / 1_000_000_000n), nanos: Number(ns % 1_000_000_000n) },
      source,
      event,
      properties: properties ?? null,
    };
    this.stream.write(`${JSON.stringify(e)}\n`);
  }

  watch(vm: AssembledVm): void {
    this.emit('vm', 'booted');
    const lc = vm.lifecycle;
    lc.on('paused', () => this.emit('vm', 'paused'));
    lc.on('resumed', () => this.emit('vm', 'resumed'));
    lc.on('guest-request', (r) => this.emit('vm', 'guest-request', { reason: reasonText(r) }));
    lc.once('stopped', (r) => this.emit('vm', 'shutdown', { reason: reasonText(r) }));
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.broken || this.stream.closed) return resolve();
      this.stream.end(() => resolve());
    });
  }
}
