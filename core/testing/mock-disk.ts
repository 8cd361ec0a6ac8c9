import type { DiskBackend } from '../block/disk.js';
import { VmmError } from '../errors.js';

/**
 * The error class of MockDisk: an access outside the disk or after close ('Range'), a write to a read-only disk, an
 * injected failure.
 */
export class MockDiskError extends VmmError<'Range' | 'ReadOnly' | 'Injected'> {}

/** An in-memory DiskBackend with op counters and error injection. */
export class MockDiskBackend implements DiskBackend {
  readonly data: Uint8Array;
  readonly size: bigint;
  readonly blockSize: number;
  readonly supportsDiscard = true;
  readonly supportsWriteZeroes = true;
  readonly ops = { read: 0, write: 0, flush: 0, discard: 0, writeZeroes: 0 };
  closed = false;
  /** The next operation (of any kind) rejects with this error. */
  failNext?: Error;

  constructor(
    size: number | Uint8Array,
    readonly readOnly = false,
    blockSize = 512,
  ) {
    this.data = typeof size === 'number' ? new Uint8Array(size) : size;
    this.size = BigInt(this.data.length);
    this.blockSize = blockSize;
  }

  private check(offset: bigint, length: bigint, write: boolean): number {
    if (this.failNext) {
      const e = this.failNext;
      this.failNext = undefined;
      throw e;
    }
    if (this.closed) throw new MockDiskError('Range', 'disk is closed');
    if (offset < 0n || length < 0n || offset + length > this.size)
      throw new MockDiskError('Range', `[${offset}, +${length}) is outside the ${this.size}-byte disk`);
    if (write && this.readOnly) throw new MockDiskError('ReadOnly', 'disk is read-only');
    return Number(offset);
  }

  async read(offset: bigint, into: Uint8Array[]): Promise<void> {
    let o = this.check(offset, BigInt(into.reduce((s, b) => s + b.length, 0)), false);
    this.ops.read++;
    for (const b of into) {
      b.set(this.data.subarray(o, o + b.length));
      o += b.length;
    }
  }
  async write(offset: bigint, from: Uint8Array[]): Promise<void> {
    let o = this.check(offset, BigInt(from.reduce((s, b) => s + b.length, 0)), true);
    this.ops.write++;
    for (const b of from) {
      this.data.set(b, o);
      o += b.length;
    }
  }
  async flush(): Promise<void> {
    this.check(0n, 0n, false);
    this.ops.flush++;
  }
  async discard(offset: bigint, length: bigint): Promise<void> {
    const o = this.check(offset, length, true);
    this.ops.discard++;
    this.data.fill(0, o, o + Number(length));
  }
  async writeZeroes(offset: bigint, length: bigint): Promise<void> {
    const o = this.check(offset, length, true);
    this.ops.writeZeroes++;
    this.data.fill(0, o, o + Number(length));
  }
  async close(): Promise<void> {
    this.closed = true;
  }
}
