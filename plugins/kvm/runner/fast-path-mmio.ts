/**
 * Worker-side MMIO fast paths: a short shared table of 4-byte registers (below 4 GiB) whose
 * reads a device published (answered on the vCPU's thread) or whose writes it lets queue in
 * the vCPU's TX ring (./fast-path.ts, MMIO entries). Only the main thread writes the table;
 * a seqlock (SEQ odd while it writes) lets a worker scan it without seeing half an update.
 *
 * Layout (Int32): [SEQ, COUNT, -, -] then MMIO_SLOTS entries of [ADDR, FLAGS, VALUE, -].
 * FLAGS: MMIO_READ (reads answer VALUE), MMIO_QUEUE (writes go to the ring).
 *
 * Ordering: a read is answered from the table only while every vCPU's ring is empty, since a
 * queued write (an InterruptACK) may change what the register reads; otherwise it hops and
 * the hop drains first. A write is queued only while the other vCPUs' rings are empty (the
 * rule the PIO ring uses).
 */
import { FAST, PUSH, type TxRing } from './fast-path.js';

export const MMIO_SLOTS = 32;
const HDR = { SEQ: 0, COUNT: 1 } as const;
const HDR_WORDS = 4;
const E = { ADDR: 0, FLAGS: 1, VALUE: 2 } as const;
const E_WORDS = 4;
export const MMIO_FLAG = { READ: 1, QUEUE: 2 } as const;
export const MMIO_TABLE_BYTES = (HDR_WORDS + MMIO_SLOTS * E_WORDS) * 4;

export interface MmioSlot { address: number; flags: number; value: number }

/** The per-runner MMIO table (see the file comment). */
export class MmioTable {
  readonly words: Int32Array;
  constructor(sab: SharedArrayBuffer = new SharedArrayBuffer(MMIO_TABLE_BYTES)) {
    if (sab.byteLength !== MMIO_TABLE_BYTES) throw new RangeError(`MMIO table must be ${MMIO_TABLE_BYTES} bytes, got ${sab.byteLength}`);
    this.words = new Int32Array(sab);
  }
  get buffer(): SharedArrayBuffer { return this.words.buffer as SharedArrayBuffer; }
  get count(): number { return Atomics.load(this.words, HDR.COUNT); }

  /** Main thread: replaces every entry (slots with flags 0 are left out; beyond MMIO_SLOTS are dropped). Returns how many were kept. */
  replace(slots: readonly MmioSlot[]): number {
    const w = this.words;
    const keep = slots.filter((s) => s.flags !== 0 && Number.isInteger(s.address) && s.address >= 0 && s.address < 2 ** 32).slice(0, MMIO_SLOTS);
    Atomics.add(w, HDR.SEQ, 1); // odd: workers hop
    Atomics.store(w, HDR.COUNT, 0);
    keep.forEach((s, i) => {
      const b = HDR_WORDS + i * E_WORDS;
      Atomics.store(w, b + E.ADDR, s.address | 0);
      Atomics.store(w, b + E.FLAGS, s.flags);
      Atomics.store(w, b + E.VALUE, s.value | 0);
    });
    Atomics.store(w, HDR.COUNT, keep.length);
    Atomics.add(w, HDR.SEQ, 1);
    return keep.length;
  }
}

/** Finds `address`'s slot; returns its word base or -1. Call inside a seqlock read. */
function find(w: Int32Array, address: number): number {
  const n = Math.min(Atomics.load(w, HDR.COUNT), MMIO_SLOTS);
  const a = address | 0;
  for (let i = 0; i < n; i++) {
    const b = HDR_WORDS + i * E_WORDS;
    if (Atomics.load(w, b + E.ADDR) === a) return b;
  }
  return -1;
}

/**
 * The worker's decision for one MMIO exit. `addrLo`/`addrHi`: the exit's physical address halves;
 * `data`: the kvm_run bytes, the access's data at `dataOffset`. Only 4-byte accesses below 4 GiB
 * take a fast path. Returns FAST.MMIO_READ / MMIO_RING / MMIO_RING_NOTIFY, or FAST.HOP.
 */
export function fastMmio(table: Int32Array, ring: TxRing | undefined, isWrite: boolean, addrLo: number, addrHi: number, len: number,
  data: Uint8Array, dataOffset: number, others: readonly TxRing[] = []): number {
  if (len !== 4 || addrHi !== 0 || dataOffset < 0 || dataOffset + 4 > data.length) return FAST.HOP;
  const seq = Atomics.load(table, HDR.SEQ);
  if (seq & 1) return FAST.HOP;
  const b = find(table, addrLo);
  if (b < 0) return FAST.HOP;
  const flags = Atomics.load(table, b + E.FLAGS);
  const value = Atomics.load(table, b + E.VALUE);
  if (Atomics.load(table, HDR.SEQ) !== seq) return FAST.HOP;
  for (let i = 0; i < others.length; i++) if (others[i].length !== 0) return FAST.HOP;
  if (!isWrite) {
    if (!(flags & MMIO_FLAG.READ) || (ring && ring.length !== 0)) return FAST.HOP;
    data[dataOffset] = value & 0xff;
    data[dataOffset + 1] = (value >>> 8) & 0xff;
    data[dataOffset + 2] = (value >>> 16) & 0xff;
    data[dataOffset + 3] = (value >>> 24) & 0xff;
    return FAST.MMIO_READ;
  }
  if (!(flags & MMIO_FLAG.QUEUE) || !ring) return FAST.HOP;
  const v = data[dataOffset] | (data[dataOffset + 1] << 8) | (data[dataOffset + 2] << 16) | (data[dataOffset + 3] << 24);
  const r = ring.pushMmio(addrLo, v);
  return r === PUSH.FULL ? FAST.HOP : r === PUSH.NOTIFY ? FAST.MMIO_RING_NOTIFY : FAST.MMIO_RING;
}
