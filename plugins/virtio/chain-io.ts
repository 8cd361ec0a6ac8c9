import type { GuestMemory, MemoryAccess } from '../../core/memory/guest-memory.js';
import type { DescriptorBuffer, DescriptorChain } from '../../core/virtio/virtio.js';
import { VirtQueueError } from './errors.js';

/** A cursor over a list of validated buffers. */
class BufferCursor {
  private buf = 0;
  private off = 0;
  private consumed = 0;

  constructor(
    protected readonly memory: GuestMemory,
    private readonly buffers: readonly DescriptorBuffer[],
    readonly total: number,
    /** 'write' for the device-writable part: views over read-only guest memory are refused. */
    private readonly access: MemoryAccess,
  ) {}

  /** Bytes not yet consumed. */
  get remaining(): number {
    return this.total - this.consumed;
  }
  /** Bytes consumed so far. */
  get done(): number {
    return this.consumed;
  }

  protected need(n: number, what: string): void {
    if (!Number.isSafeInteger(n) || n < 0)
      throw new VirtQueueError('ShortChain', `${what}: ${n} is not a byte count`, { n });
    if (n > this.remaining) {
      throw new VirtQueueError('ShortChain', `${what}: ${n} bytes asked, ${this.remaining} left in the chain`, {
        n,
        remaining: this.remaining,
      });
    }
  }

  /** Whether the next `n` bytes lie in the current buffer and in one memory region. */
  protected fitsOnePiece(n: number): boolean {
    const b = this.buffers[this.buf];
    if (!b || b.len - this.off < n) return false;
    return this.memory.findRegion(b.addr.add(this.off))?.range.contains(b.addr.add(this.off), n) ?? false;
  }

  /**
   * Zero-copy views of the next `n` bytes (one per buffer piece, split further
   * where a buffer spans two memory regions); advances the cursor. The views alias
   * guest RAM and stay valid until the guest memory is closed.
   */
  protected take(n: number, what: string): Uint8Array[] {
    this.need(n, what);
    const out: Uint8Array[] = [];
    while (n > 0) {
      const b = this.buffers[this.buf];
      const chunk = Math.min(n, b.len - this.off);
      out.push(...this.memory.slices(b.addr.add(this.off), chunk, this.access));
      this.off += chunk;
      this.consumed += chunk;
      n -= chunk;
      if (this.off === b.len) {
        this.buf++;
        this.off = 0;
      }
    }
    return out;
  }
}

/**
 * Reads the device-readable part of a chain as one byte stream across its buffers.
 * Reading past the end throws VirtQueueError('ShortChain') and consumes nothing.
 */
export class ChainReader extends BufferCursor {
  constructor(memory: GuestMemory, chain: DescriptorChain) {
    super(memory, chain.readable, chain.readableLength, 'read');
  }

  /** Copies the next `n` bytes out. */
  read(n: number): Uint8Array {
    const out = new Uint8Array(n < 0 ? 0 : n);
    this.readInto(out);
    return out;
  }

  readInto(into: Uint8Array): void {
    let o = 0;
    for (const v of this.take(into.length, 'ChainReader.read')) {
      into.set(v, o);
      o += v.length;
    }
  }

  /** Zero-copy views of the next `n` bytes (see take()). */
  slices(n: number): Uint8Array[] {
    return this.take(n, 'ChainReader.slices');
  }

  /** The next `n` bytes as one view when they lie in one buffer and region, else undefined (cursor unchanged). */
  slice(n: number): Uint8Array | undefined {
    this.need(n, 'ChainReader.slice');
    if (n === 0) return new Uint8Array(0);
    if (!this.fitsOnePiece(n)) return undefined;
    return this.take(n, 'ChainReader.slice')[0];
  }

  skip(n: number): void {
    this.take(n, 'ChainReader.skip');
  }

  readU8(): number {
    return this.read(1)[0];
  }
  readU16(): number {
    return new DataView(this.read(2).buffer).getUint16(0, true);
  }
  readU32(): number {
    return new DataView(this.read(4).buffer).getUint32(0, true);
  }
  readU64(): bigint {
    return new DataView(this.read(8).buffer).getBigUint64(0, true);
  }
}

/**
 * Writes the device-writable part of a chain as one byte stream across its buffers.
 * `written` is what the device reports in the used ring. Writing past the end throws
 * VirtQueueError('ShortChain') and writes nothing; a buffer in read-only guest memory
 * throws GuestMemoryError('ReadOnly') and writes nothing of that piece.
 */
export class ChainWriter extends BufferCursor {
  constructor(memory: GuestMemory, chain: DescriptorChain) {
    super(memory, chain.writable, chain.writableLength, 'write');
  }

  get written(): number {
    return this.done;
  }

  write(data: Uint8Array): void {
    let o = 0;
    for (const v of this.take(data.length, 'ChainWriter.write')) {
      v.set(data.subarray(o, o + v.length));
      o += v.length;
    }
  }

  /** Writes `n` copies of `value` (e.g. zeroing the rest of a buffer). */
  fill(n: number, value = 0): void {
    for (const v of this.take(n, 'ChainWriter.fill')) v.fill(value);
  }

  /** Zero-copy writable views of the next `n` bytes; the device fills them (e.g. with preadv). */
  slices(n: number): Uint8Array[] {
    return this.take(n, 'ChainWriter.slices');
  }

  writeU8(v: number): void {
    this.write(Uint8Array.of(v & 0xff));
  }
  writeU16(v: number): void {
    const b = new Uint8Array(2);
    new DataView(b.buffer).setUint16(0, v, true);
    this.write(b);
  }
  writeU32(v: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v >>> 0, true);
    this.write(b);
  }
  writeU64(v: bigint): void {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt.asUintN(64, v), true);
    this.write(b);
  }
}
