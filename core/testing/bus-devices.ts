import type { BusDevice } from '../bus/bus.js';

/** One access RecordingBusDevice saw: read or write, the offset in its range, and the bytes. */
export interface BusAccess {
  op: 'read' | 'write';
  offset: bigint;
  data: number[];
}

/** Records every access; reads answer from `respond` (default: zeros). */
export class RecordingBusDevice implements BusDevice {
  readonly accesses: BusAccess[] = [];
  constructor(
    private readonly respond: (offset: bigint, size: number) => number[] | Uint8Array = (_o, n) =>
      new Array<number>(n).fill(0),
  ) {}
  read(offset: bigint, data: Uint8Array): void {
    data.set(Array.from(this.respond(offset, data.length)).slice(0, data.length));
    this.accesses.push({ op: 'read', offset, data: [...data] });
  }
  write(offset: bigint, data: Uint8Array): void {
    this.accesses.push({ op: 'write', offset, data: [...data] });
  }
  get writes(): BusAccess[] {
    return this.accesses.filter((a) => a.op === 'write');
  }
  get reads(): BusAccess[] {
    return this.accesses.filter((a) => a.op === 'read');
  }
  /** Bytes written, concatenated (e.g. what a guest printed to a port). */
  writtenBytes(): Uint8Array {
    return Uint8Array.from(this.writes.flatMap((w) => w.data));
  }
}

/** A byte-addressed register file: writes store, reads return what was stored. */
export class MemoryBusDevice implements BusDevice {
  readonly bytes: Uint8Array;
  constructor(size: number) {
    this.bytes = new Uint8Array(size);
  }
  read(offset: bigint, data: Uint8Array): void {
    const o = Number(offset);
    data.set(this.bytes.subarray(o, o + data.length));
  }
  write(offset: bigint, data: Uint8Array): void {
    this.bytes.set(data, Number(offset));
  }
}
