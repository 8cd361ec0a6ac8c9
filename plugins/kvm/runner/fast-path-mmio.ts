/**
 * Worker-side MMIO fast paths: a short shared table of 4-byte registers (below 4 GiB) whose
 * reads a device published (answered on the vCPU's thread) or whose writes it lets queue in
 * the vCPU's TX ring (./fast-path.ts, MMIO entries). Only the main thread writes the table;
 * a seqlock (SEQ odd while it writes) lets a worker scan it without seeing half an update.
 *
 * Layout (Int32): [SEQ, COUNT, -, -] then MMIO_SLOTS entries of [ADDR, FLAGS, VALUE, MASK],
 * then MMIO_CELLS shared words ("cells").
 * FLAGS: READ (reads answer VALUE), QUEUE (writes go to the ring), READ_CELL (reads answer
 * cell VALUE, loaded atomically), CLEAR_CELL (writes clear `data & MASK` in cell VALUE with
 * one Atomics.and, done on the worker before the guest runs on).
 *
 * Cells hold registers that both sides change (virtio-mmio InterruptStatus): the device sets
 * bits with Atomics.or (then signals its irqfd), the worker clears acknowledged bits with
 * Atomics.and at the moment of the guest's write. So a bit set after the guest's status read is
 * never cleared by a later-applied ACK (what a queued ACK did), and no ACK waits for the main thread.
 * The main thread writes only the table entries; the cells are never rewritten by `replace`.
 * A cell is handed out once and never reused (a device keeps its word after it detaches).
 *
 * Ordering: a read is answered from the table only while every vCPU's ring is empty, since a
 * queued write (an InterruptACK) may change what the register reads; otherwise it hops and
 * the hop drains first. A write is queued only while the other vCPUs' rings are empty (the
 * rule the PIO ring uses).
 */
import type { SharedWord } from '../../../core/bus/fast-path.js';
import { FAST, PUSH, type TxRing } from './fast-path.js';

/** Published MMIO registers per runner (table entries; a device asking for more takes the normal path). */
export const MMIO_SLOTS = 32;
/** Shared clearable words (MmioFastPath.shareClearableWord) per runner. */
export const MMIO_CELLS = 32;
const HDR = { SEQ: 0, COUNT: 1 } as const;
const HDR_WORDS = 4;
const E = { ADDR: 0, FLAGS: 1, VALUE: 2, MASK: 3 } as const;
const E_WORDS = 4;
const CELL_BASE = HDR_WORDS + MMIO_SLOTS * E_WORDS;
/** Flags of an MMIO table entry: answer reads with `value`, queue writes, read a shared cell, clear bits of a cell. */
export const MMIO_FLAG = { READ: 1, QUEUE: 2, READ_CELL: 4, CLEAR_CELL: 8 } as const;
/** The size of a runner's MMIO table in bytes (header, slots and cells). */
export const MMIO_TABLE_BYTES = (CELL_BASE + MMIO_CELLS) * 4;

/** `value`: the read value (READ) or the cell index (READ_CELL / CLEAR_CELL); `mask`: CLEAR_CELL's writable bits. */
export interface MmioSlot {
  address: number;
  flags: number;
  value: number;
  mask?: number;
}

/** One cell of a table, as the device sees it (core/bus/fast-path.ts SharedWord). */
export class MmioCell implements SharedWord {
  constructor(
    private readonly words: Int32Array,
    readonly index: number,
  ) {
    if (!Number.isInteger(index) || index < 0 || index >= MMIO_CELLS)
      throw new RangeError(`MMIO cell ${index} out of range`);
  }
  load(): number {
    return Atomics.load(this.words, CELL_BASE + this.index) >>> 0;
  }
  store(value: number): void {
    Atomics.store(this.words, CELL_BASE + this.index, value | 0);
  }
  or(bits: number): number {
    return Atomics.or(this.words, CELL_BASE + this.index, bits | 0) >>> 0;
  }
  clear(bits: number): number {
    return Atomics.and(this.words, CELL_BASE + this.index, ~bits) >>> 0;
  }
}

/** The per-runner MMIO table (see the file comment). */
export class MmioTable {
  readonly words: Int32Array;
  constructor(sab: SharedArrayBuffer = new SharedArrayBuffer(MMIO_TABLE_BYTES)) {
    if (sab.byteLength !== MMIO_TABLE_BYTES)
      throw new RangeError(`MMIO table must be ${MMIO_TABLE_BYTES} bytes, got ${sab.byteLength}`);
    this.words = new Int32Array(sab);
  }
  get buffer(): SharedArrayBuffer {
    return this.words.buffer as SharedArrayBuffer;
  }
  get count(): number {
    return Atomics.load(this.words, HDR.COUNT);
  }
  private nextCell = 0;
  /** Main thread: hands out the next unused cell (zeroed), or undefined when all are taken. */
  allocateCell(): MmioCell | undefined {
    if (this.nextCell >= MMIO_CELLS) return undefined;
    const cell = new MmioCell(this.words, this.nextCell++);
    cell.store(0);
    return cell;
  }

  /**
   * Main thread: replaces every entry (slots with flags 0 are left out; beyond MMIO_SLOTS are dropped). Returns how
   * many were kept.
   */
  replace(slots: readonly MmioSlot[]): number {
    const w = this.words;
    const keep = slots
      .filter((s) => s.flags !== 0 && Number.isInteger(s.address) && s.address >= 0 && s.address < 2 ** 32)
      .slice(0, MMIO_SLOTS);
    Atomics.add(w, HDR.SEQ, 1); // odd: workers hop
    Atomics.store(w, HDR.COUNT, 0);
    keep.forEach((s, i) => {
      const b = HDR_WORDS + i * E_WORDS;
      Atomics.store(w, b + E.ADDR, s.address | 0);
      Atomics.store(w, b + E.FLAGS, s.flags);
      Atomics.store(w, b + E.VALUE, s.value | 0);
      Atomics.store(w, b + E.MASK, (s.mask ?? 0) | 0);
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
 * take a fast path. Returns FAST.MMIO_READ (a read answered, or a CLEAR_CELL write applied: the
 * exit is complete), MMIO_RING / MMIO_RING_NOTIFY (a write queued), or FAST.HOP.
 */
export function fastMmio(
  table: Int32Array,
  ring: TxRing | undefined,
  isWrite: boolean,
  addrLo: number,
  addrHi: number,
  len: number,
  data: Uint8Array,
  dataOffset: number,
  others: readonly TxRing[] = [],
): number {
  if (len !== 4 || addrHi !== 0 || dataOffset < 0 || dataOffset + 4 > data.length) return FAST.HOP;
  const seq = Atomics.load(table, HDR.SEQ);
  if (seq & 1) return FAST.HOP;
  const b = find(table, addrLo);
  if (b < 0) return FAST.HOP;
  const flags = Atomics.load(table, b + E.FLAGS);
  const value = Atomics.load(table, b + E.VALUE);
  const mask = Atomics.load(table, b + E.MASK);
  if (Atomics.load(table, HDR.SEQ) !== seq) return FAST.HOP;
  for (let i = 0; i < others.length; i++) if (others[i].length !== 0) return FAST.HOP;
  const cell = value >>> 0;
  // A write still queued in this vCPU's ring comes first in program order and may change what a
  // register reads or what a clear acts on: hop then (the hop drains the ring first).
  const queued = ring !== undefined && ring.length !== 0;
  if (!isWrite) {
    let v: number;
    if (queued) return FAST.HOP;
    if (flags & MMIO_FLAG.READ_CELL) {
      if (cell >= MMIO_CELLS || CELL_BASE + cell >= table.length) return FAST.HOP;
      v = Atomics.load(table, CELL_BASE + cell);
    } else if (flags & MMIO_FLAG.READ) {
      v = value;
    } else return FAST.HOP;
    data[dataOffset] = v & 0xff;
    data[dataOffset + 1] = (v >>> 8) & 0xff;
    data[dataOffset + 2] = (v >>> 16) & 0xff;
    data[dataOffset + 3] = (v >>> 24) & 0xff;
    return FAST.MMIO_READ;
  }
  const v =
    data[dataOffset] | (data[dataOffset + 1] << 8) | (data[dataOffset + 2] << 16) | (data[dataOffset + 3] << 24);
  if (flags & MMIO_FLAG.CLEAR_CELL) {
    if (queued || cell >= MMIO_CELLS || CELL_BASE + cell >= table.length) return FAST.HOP;
    // Applied now, before the guest runs on: only bits the guest saw (and writes back) are cleared.
    Atomics.and(table, CELL_BASE + cell, ~(v & mask));
    return FAST.MMIO_READ;
  }
  if (!(flags & MMIO_FLAG.QUEUE) || !ring) return FAST.HOP;
  const r = ring.pushMmio(addrLo, v);
  return r === PUSH.FULL ? FAST.HOP : r === PUSH.NOTIFY ? FAST.MMIO_RING_NOTIFY : FAST.MMIO_RING;
}
