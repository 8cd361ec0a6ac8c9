/**
 * Worker-side fast paths: shared tables the main thread publishes and vCPU workers consult
 * before handing a PIO exit to the main thread (a "hop", ~50-80 µs on the host, milliseconds
 * in the nested sandbox).
 *
 * Port table: one Int32 per PIO port (64K entries, one SharedArrayBuffer per runner):
 *   bits 0-7  the byte a 1-byte read answers (when READ_CONST is set)
 *   bit  8    READ_CONST: 1-byte reads are answered on the worker with bits 0-7
 *   bits 9-10 what a 1-byte write does: WRITE_HOP (main thread), WRITE_DROP, WRITE_RING
 * Only the main thread writes entries (Atomics.store of the whole word, so a worker never
 * sees half an update); workers Atomics.load them.
 *
 * TX ring: one per vCPU, single producer (the worker) / single consumer (the main thread).
 * Header Int32 words HEAD (consumer), TAIL (producer), PENDING (a wake-up is owed), and two
 * counters the producer keeps (FULL: pushes refused, NOTIFIES: wake-ups sent). Entries are
 * `port << 8 | byte`, or three words for a queued 4-byte MMIO write: MMIO_TAG, address (low 32 bits,
 * ./fast-path-mmio.ts only queues addresses below 4 GiB), value; TAIL moves past all three at once.
 * HEAD/TAIL are free-running int32 counters (differences taken with |0, index with & mask, so they wrap at
 * 2^32 without harm).
 * Lost wake-ups: the producer publishes TAIL, then Atomics.exchange(PENDING, 1) and wakes the
 * consumer only when PENDING was 0; the consumer stores PENDING = 0 *before* it loads TAIL.
 * Whatever the interleaving, an entry the consumer did not see was published after PENDING
 * went to 0 again, so its producer sent a wake-up.
 */

/** Entries in a port table: one per 16-bit PIO port. */
export const PORTS = 0x10000;
/** Bit fields of a port table entry (see the file comment). */
export const ENTRY = { VALUE_MASK: 0xff, READ_CONST: 0x100, WRITE_SHIFT: 9, WRITE_MASK: 0x600 } as const;
/** What a worker does with a 1-byte write to a port: hop to the main thread, drop it, or queue it in its TX ring. */
export const WRITE = { HOP: 0, DROP: 1, RING: 2 } as const;
/** One WRITE value. */
export type WriteAction = (typeof WRITE)[keyof typeof WRITE];

/** A port table entry: answer 1-byte reads with `read` (undefined: hop), handle 1-byte writes as `write`. */
export const entry = (read: number | undefined, write: WriteAction): number =>
  (read === undefined ? 0 : ENTRY.READ_CONST | (read & 0xff)) | (write << ENTRY.WRITE_SHIFT);
/** The byte an entry answers 1-byte reads with, or undefined when reads hop. */
export const entryRead = (e: number): number | undefined => (e & ENTRY.READ_CONST ? e & 0xff : undefined);
/** What an entry does with 1-byte writes. */
export const entryWrite = (e: number): WriteAction => ((e & ENTRY.WRITE_MASK) >> ENTRY.WRITE_SHIFT) as WriteAction;

/** The per-runner port table (see the file comment). */
export class PortTable {
  readonly words: Int32Array;
  constructor(sab: SharedArrayBuffer = new SharedArrayBuffer(PORTS * 4)) {
    if (sab.byteLength !== PORTS * 4)
      throw new RangeError(`port table must be ${PORTS * 4} bytes, got ${sab.byteLength}`);
    this.words = new Int32Array(sab);
  }
  get buffer(): SharedArrayBuffer {
    return this.words.buffer as SharedArrayBuffer;
  }
  get(port: number): number {
    return Atomics.load(this.words, port & 0xffff);
  }
  /** Stores only on change (cheap to call after every device access). */
  set(port: number, e: number): void {
    const p = port & 0xffff;
    if (Atomics.load(this.words, p) !== e) Atomics.store(this.words, p, e);
  }
}

/** Word indexes of a TX ring's header (see the file comment). */
export const RING_HDR = { HEAD: 0, TAIL: 1, PENDING: 2, FULL: 3, NOTIFIES: 4 } as const;
const RING_HDR_WORDS = 8;
/** TxRing.create's default capacity, in entries (capacities are powers of two up to 2^20). */
export const DEFAULT_RING_CAPACITY = 4096;

/** TxRing.push results: queued, queued and the consumer must be woken, or refused (ring full: hop instead). */
export const PUSH = { OK: 0, NOTIFY: 1, FULL: 2 } as const;
/** First word of a queued MMIO write (PIO entries never set bit 31). */
export const MMIO_TAG = 0x80000000 | 0;

/** A per-vCPU SPSC ring of queued 1-byte port writes (see the file comment). */
export class TxRing {
  readonly hdr: Int32Array;
  readonly entries: Int32Array;
  private readonly mask: number;

  static create(capacity = DEFAULT_RING_CAPACITY): TxRing {
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > 1 << 20 || (capacity & (capacity - 1)) !== 0) {
      throw new RangeError(`ring capacity must be a power of two in 1..2^20, got ${capacity}`);
    }
    return new TxRing(new SharedArrayBuffer((RING_HDR_WORDS + capacity) * 4));
  }

  constructor(readonly buffer: SharedArrayBuffer) {
    const n = buffer.byteLength / 4 - RING_HDR_WORDS;
    if (!Number.isInteger(n) || n < 1 || (n & (n - 1)) !== 0)
      throw new RangeError(`bad ring buffer of ${buffer.byteLength} bytes`);
    this.hdr = new Int32Array(buffer, 0, RING_HDR_WORDS);
    this.entries = new Int32Array(buffer, RING_HDR_WORDS * 4, n);
    this.mask = n - 1;
  }

  get capacity(): number {
    return this.mask + 1;
  }
  /** Entries queued and not yet drained. */
  get length(): number {
    return (Atomics.load(this.hdr, RING_HDR.TAIL) - Atomics.load(this.hdr, RING_HDR.HEAD)) | 0;
  }
  get fullCount(): number {
    return Atomics.load(this.hdr, RING_HDR.FULL);
  }
  get notifyCount(): number {
    return Atomics.load(this.hdr, RING_HDR.NOTIFIES);
  }

  /** Producer (worker). NOTIFY: the consumer must be woken (it owes no drain yet). */
  push(port: number, byte: number): number {
    return this.put(((port & 0xffff) << 8) | (byte & 0xff));
  }

  /** Producer (worker): a 4-byte MMIO write at `address` (< 2^32). Same results as push. */
  pushMmio(address: number, value: number): number {
    return this.put(MMIO_TAG, address | 0, value | 0);
  }

  private put(w0: number, w1?: number, w2?: number): number {
    const h = this.hdr;
    const n = w1 === undefined ? 1 : 3;
    const t = Atomics.load(h, RING_HDR.TAIL);
    if (((t - Atomics.load(h, RING_HDR.HEAD)) | 0) > this.mask + 1 - n) {
      Atomics.add(h, RING_HDR.FULL, 1);
      return PUSH.FULL;
    }
    Atomics.store(this.entries, t & this.mask, w0);
    if (n === 3) {
      Atomics.store(this.entries, (t + 1) & this.mask, w1!);
      Atomics.store(this.entries, (t + 2) & this.mask, w2!);
    }
    Atomics.store(h, RING_HDR.TAIL, (t + n) | 0);
    if (Atomics.exchange(h, RING_HDR.PENDING, 1) !== 0) return PUSH.OK;
    Atomics.add(h, RING_HDR.NOTIFIES, 1);
    return PUSH.NOTIFY;
  }

  /**
   * Consumer (main thread): hands every queued write to `deliver` (PIO) or `deliverMmio` in order;
   * returns how many. Without `deliverMmio`, MMIO entries are skipped (and counted).
   */
  drain(deliver: (port: number, byte: number) => void, deliverMmio?: (address: number, value: number) => void): number {
    const h = this.hdr;
    Atomics.store(h, RING_HDR.PENDING, 0); // before loading TAIL: see the file comment
    let head = Atomics.load(h, RING_HDR.HEAD);
    const tail = Atomics.load(h, RING_HDR.TAIL);
    let n = 0;
    while (head !== tail) {
      const e = Atomics.load(this.entries, head & this.mask);
      if (e === MMIO_TAG && ((tail - head) | 0) >= 3) {
        const addr = Atomics.load(this.entries, (head + 1) & this.mask) >>> 0;
        const value = Atomics.load(this.entries, (head + 2) & this.mask) >>> 0;
        head = (head + 3) | 0;
        Atomics.store(h, RING_HDR.HEAD, head);
        n++;
        deliverMmio?.(addr, value);
        continue;
      }
      head = (head + 1) | 0;
      // Free the slot before delivering: a delivery that throws must not replay the write.
      Atomics.store(h, RING_HDR.HEAD, head);
      n++;
      if (e === MMIO_TAG) continue; // a torn MMIO entry cannot happen (TAIL moves by 3); never misread it as PIO
      deliver((e >>> 8) & 0xffff, e & 0xff);
    }
    return n;
  }
}

/** What the worker did with an exit (also the stats kind it is counted under). */
export const FAST = {
  HOP: -1,
  RING: 0,
  RING_NOTIFY: 1,
  READ: 2,
  DROP: 3,
  MMIO_READ: 4,
  MMIO_RING: 5,
  MMIO_RING_NOTIFY: 6,
} as const;

/**
 * The worker's decision for one PIO exit: `bytes` is the kvm_run mapping, `dataOffset` where
 * the exit's data lies in it. Only single 1-byte accesses take a fast path; anything else,
 * a full ring or an entry that says so returns HOP (the main thread handles it as before).
 * `others`: the other vCPUs' rings. A write is queued only while they are all empty, so writes
 * of different vCPUs ordered by the guest (a lock: the earlier writer's push is visible to the
 * later one) reach devices in that order: the later writer hops, and the hop drains the rest first.
 */
export function fastPio(
  table: Int32Array,
  ring: TxRing | undefined,
  isOut: boolean,
  port: number,
  size: number,
  count: number,
  bytes: Uint8Array,
  dataOffset: number,
  others: readonly TxRing[] = [],
): number {
  if (size !== 1 || count !== 1 || dataOffset < 0 || dataOffset >= bytes.length) return FAST.HOP;
  const e = Atomics.load(table, port & 0xffff);
  if (!isOut) {
    if (!(e & ENTRY.READ_CONST)) return FAST.HOP;
    bytes[dataOffset] = e & 0xff;
    return FAST.READ;
  }
  const w = (e & ENTRY.WRITE_MASK) >> ENTRY.WRITE_SHIFT;
  if (w === WRITE.DROP) return FAST.DROP;
  if (w !== WRITE.RING || !ring) return FAST.HOP;
  for (let i = 0; i < others.length; i++) if (others[i].length !== 0) return FAST.HOP;
  const r = ring.push(port, bytes[dataOffset]);
  return r === PUSH.FULL ? FAST.HOP : r === PUSH.NOTIFY ? FAST.RING_NOTIFY : FAST.RING;
}
