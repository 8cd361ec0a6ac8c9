import { GuestAddress } from '../../core/address.js';
import type { GuestMemory, MemoryAccess } from '../../core/memory/guest-memory.js';
import type { DescriptorChain, FlatBuffers } from '../../core/virtio/virtio.js';
import { ChainReader, ChainWriter } from '../virtio/chain-io.js';
import {
  BlkRequestType,
  BlkStatus,
  type BlkStatusValue,
  DISCARD_FLAG_UNMAP,
  DISCARD_SEGMENT_SIZE,
  MAX_DISCARD_SECTORS,
  MAX_DISCARD_SEGMENTS,
  MAX_WRITE_ZEROES_SECTORS,
  MAX_WRITE_ZEROES_SEGMENTS,
  REQUEST_HEADER_SIZE,
  SECTOR_SHIFT,
  SECTOR_SIZE,
  VIRTIO_BLK_F_DISCARD,
  VIRTIO_BLK_F_WRITE_ZEROES,
  VIRTIO_BLK_ID_BYTES,
} from './constants.js';

/** What the parser needs to know about the device and the negotiated features. */
export interface RequestContext {
  readonly memory: GuestMemory;
  /** Disk size in 512-byte sectors. */
  readonly capacity: bigint;
  readonly readOnly: boolean;
  /** Features the driver accepted (DISCARD / WRITE_ZEROES must be negotiated to be used). */
  readonly features: bigint;
}

/** One discard/write-zeroes segment in bytes on the disk, and whether the device may deallocate it (unmap). */
export interface Segment {
  readonly offset: bigint;
  readonly length: bigint;
  readonly unmap: boolean;
}

interface Base {
  readonly head: number;
  /**
   * Where the status byte goes (last byte of the last writable buffer): a plain number when the chain gave its
   * buffers as numbers (chain.flat, every address below 2^53).
   */
  readonly statusAddr: GuestAddress | number;
}

/** A validated request, ready for the disk; or one answered without touching the disk. */
export type BlkRequest =
  | (Base & { readonly kind: 'read'; readonly offset: bigint; readonly length: number; readonly data: Uint8Array[] })
  | (Base & { readonly kind: 'write'; readonly offset: bigint; readonly length: number; readonly data: Uint8Array[] })
  | (Base & { readonly kind: 'flush' })
  | (Base & { readonly kind: 'get-id'; readonly data: Uint8Array[] })
  | (Base & { readonly kind: 'discard' | 'write-zeroes'; readonly segments: readonly Segment[] })
  /** Refused at parse time: the status to report and why (for logs and metrics). */
  | (Base & { readonly kind: 'reject'; readonly status: BlkStatusValue; readonly reason: string });

/** A chain with no writable status byte: nothing can be reported, the driver broke the rules. */
export interface FatalChain {
  readonly kind: 'fatal';
  readonly head: number;
  readonly reason: string;
}

const reject = (b: Base, status: BlkStatusValue, reason: string): BlkRequest => ({
  ...b,
  kind: 'reject',
  status,
  reason,
});

/**
 * Parses and validates one descriptor chain (virtio 1.2 §5.2.6). The header is the
 * first 16 device-readable bytes, the status byte the last device-writable byte;
 * the layout of buffers is otherwise free (VERSION_1 "any layout"). Every guest
 * number is checked in bigint: sector + length against capacity, lengths in whole
 * sectors, segment counts and flags. Returned data views alias guest RAM.
 */
export function parseRequest(ctx: RequestContext, chain: DescriptorChain): BlkRequest | FatalChain {
  let statusAddr: GuestAddress | number | undefined;
  const flat = chain.flat;
  if (flat) {
    // The walker keeps no zero-length buffers: the status byte ends the last writable one.
    const last = flat.count - 1;
    if (last >= flat.readableCount) statusAddr = flat.addrs[last]! + flat.lens[last]! - 1;
  } else {
    let statusBuf: DescriptorChain['writable'][number] | undefined;
    for (let i = chain.writable.length - 1; i >= 0 && !statusBuf; i--)
      if (chain.writable[i]!.len > 0) statusBuf = chain.writable[i];
    if (statusBuf) statusAddr = statusBuf.addr.add(statusBuf.len - 1);
  }
  if (statusAddr === undefined)
    return { kind: 'fatal', head: chain.head, reason: `chain ${chain.head} has no writable status byte` };
  const base: Base = { head: chain.head, statusAddr };
  try {
    return parseWithStatus(ctx, chain, base);
  } catch (err) {
    return reject(base, BlkStatus.IOERR, `chain ${chain.head}: ${(err as Error).message}`);
  }
}

function parseWithStatus(ctx: RequestContext, chain: DescriptorChain, base: Base): BlkRequest {
  if (chain.readableLength < REQUEST_HEADER_SIZE) {
    return reject(
      base,
      BlkStatus.IOERR,
      `header needs ${REQUEST_HEADER_SIZE} readable bytes, chain has ${chain.readableLength}`,
    );
  }
  const flat = chain.flat;
  let type: number, sector: bigint, reader: ChainReader | undefined;
  const headerView =
    flat && flat.lens[0]! >= REQUEST_HEADER_SIZE
      ? ctx.memory.sliceAt?.(flat.addrs[0]!, REQUEST_HEADER_SIZE, 'read')
      : undefined;
  if (headerView || chain.readable[0]!.len >= REQUEST_HEADER_SIZE) {
    // The usual layout: the whole header in the first buffer; one copy into a scratch, no cursor.
    if (headerView) HEADER.set(headerView);
    else ctx.memory.readInto(chain.readable[0]!.addr, HEADER);
    type = HEADER_VIEW.getUint32(0, true);
    sector = HEADER_VIEW.getBigUint64(8, true);
  } else {
    reader = new ChainReader(ctx.memory, chain);
    type = reader.readU32();
    reader.readU32(); // reserved (ioprio in legacy drivers): ignored
    sector = reader.readU64();
  }
  const dataIn = chain.writableLength - 1; // device-writable bytes before the status byte
  const dataOut = chain.readableLength - REQUEST_HEADER_SIZE; // device-readable bytes after the header

  switch (type) {
    case BlkRequestType.IN: {
      if (dataOut !== 0) return reject(base, BlkStatus.IOERR, `read request carries ${dataOut} readable data bytes`);
      const bad = checkRange(ctx, sector, dataIn);
      if (bad) return reject(base, BlkStatus.IOERR, bad);
      const data = flat
        ? flatViews(ctx.memory, flat, flat.readableCount, 0, dataIn, 'write')
        : dataViews(ctx.memory, chain.writable, 0, dataIn, 'write');
      return {
        head: base.head,
        statusAddr: base.statusAddr,
        kind: 'read',
        offset: sector << SECTOR_SHIFT,
        length: dataIn,
        data,
      };
    }
    case BlkRequestType.OUT: {
      if (ctx.readOnly) return reject(base, BlkStatus.IOERR, 'write to a read-only disk');
      if (dataIn !== 0)
        return reject(base, BlkStatus.IOERR, `write request has ${dataIn} writable bytes besides the status`);
      const bad = checkRange(ctx, sector, dataOut);
      if (bad) return reject(base, BlkStatus.IOERR, bad);
      const data = flat
        ? flatViews(ctx.memory, flat, 0, REQUEST_HEADER_SIZE, dataOut, 'read')
        : dataViews(ctx.memory, chain.readable, REQUEST_HEADER_SIZE, dataOut, 'read');
      return {
        head: base.head,
        statusAddr: base.statusAddr,
        kind: 'write',
        offset: sector << SECTOR_SHIFT,
        length: dataOut,
        data,
      };
    }
    case BlkRequestType.FLUSH:
      return { ...base, kind: 'flush' };
    case BlkRequestType.GET_ID: {
      const n = Math.min(dataIn, VIRTIO_BLK_ID_BYTES);
      return { ...base, kind: 'get-id', data: new ChainWriter(ctx.memory, chain).slices(n) };
    }
    case BlkRequestType.DISCARD:
    case BlkRequestType.WRITE_ZEROES:
      if (!reader) {
        reader = new ChainReader(ctx.memory, chain);
        reader.skip(REQUEST_HEADER_SIZE);
      }
      return parseSegments(ctx, reader, base, type, dataOut);
    default:
      return reject(base, BlkStatus.UNSUPP, `request type ${type} is not supported`);
  }
}

/** Scratch for the 16-byte header (requests are parsed one at a time, on one thread). */
const HEADER = new Uint8Array(REQUEST_HEADER_SIZE);
const HEADER_VIEW = new DataView(HEADER.buffer);

/**
 * Zero-copy views of `n` bytes of `bufs` after the first `skip` bytes: one GuestMemory.slices call per buffer
 * (a buffer spanning two memory regions gives two views), no cursor. The chain walker already checked that each
 * buffer lies in guest memory and that the lengths add up; `access: 'write'` refuses read-only memory.
 */
function dataViews(
  memory: GuestMemory,
  bufs: DescriptorChain['readable'],
  skip: number,
  n: number,
  access: MemoryAccess,
): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; n > 0 && i < bufs.length; i++) {
    const b = bufs[i]!;
    if (skip >= b.len) {
      skip -= b.len;
      continue;
    }
    const len = Math.min(b.len - skip, n);
    const views = memory.slices(skip === 0 ? b.addr : b.addr.add(skip), len, access);
    for (let k = 0; k < views.length; k++) out.push(views[k]!);
    n -= len;
    skip = 0;
  }
  return out;
}

/**
 * dataViews() over a chain's FlatBuffers from buffer `from` on: a view per buffer from GuestMemory.sliceAt where the
 * memory offers it (no GuestAddress, no bigint), GuestMemory.slices otherwise (a buffer spanning two regions).
 */
function flatViews(
  memory: GuestMemory,
  flat: FlatBuffers,
  from: number,
  skip: number,
  n: number,
  access: MemoryAccess,
): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = from; n > 0 && i < flat.count; i++) {
    const blen = flat.lens[i]!;
    if (skip >= blen) {
      skip -= blen;
      continue;
    }
    const len = Math.min(blen - skip, n);
    const addr = flat.addrs[i]! + skip;
    const view = memory.sliceAt?.(addr, len, access);
    if (view) out.push(view);
    else {
      const views = memory.slices(GuestAddress.of(addr), len, access);
      for (let k = 0; k < views.length; k++) out.push(views[k]!);
    }
    n -= len;
    skip = 0;
  }
  return out;
}

/** Range check of a read or write: whole sectors, inside the disk. */
function checkRange(ctx: RequestContext, sector: bigint, length: number): string | undefined {
  if (length % SECTOR_SIZE !== 0) return `data length ${length} is not a multiple of ${SECTOR_SIZE}`;
  const end = sector + BigInt(length / SECTOR_SIZE);
  if (end > ctx.capacity) return `sectors [${sector}, ${end}) pass the end of the disk (${ctx.capacity} sectors)`;
  return undefined;
}

function parseSegments(ctx: RequestContext, reader: ChainReader, base: Base, type: number, bytes: number): BlkRequest {
  const discard = type === BlkRequestType.DISCARD;
  const name = discard ? 'discard' : 'write-zeroes';
  const feature = discard ? VIRTIO_BLK_F_DISCARD : VIRTIO_BLK_F_WRITE_ZEROES;
  if (ctx.readOnly) return reject(base, BlkStatus.IOERR, `${name} on a read-only disk`);
  if ((ctx.features & feature) === 0n) return reject(base, BlkStatus.UNSUPP, `${name} was not negotiated`);
  const maxSeg = discard ? MAX_DISCARD_SEGMENTS : MAX_WRITE_ZEROES_SEGMENTS;
  const maxSectors = discard ? MAX_DISCARD_SECTORS : MAX_WRITE_ZEROES_SECTORS;
  if (bytes === 0 || bytes % DISCARD_SEGMENT_SIZE !== 0) {
    return reject(
      base,
      BlkStatus.IOERR,
      `${name}: ${bytes} bytes of segments is not a positive multiple of ${DISCARD_SEGMENT_SIZE}`,
    );
  }
  const count = bytes / DISCARD_SEGMENT_SIZE;
  if (count > maxSeg) return reject(base, BlkStatus.IOERR, `${name}: ${count} segments, at most ${maxSeg}`);
  const segments: Segment[] = [];
  for (let i = 0; i < count; i++) {
    const sector = reader.readU64();
    const num = reader.readU32();
    const flags = reader.readU32();
    if ((flags & ~DISCARD_FLAG_UNMAP) !== 0)
      return reject(base, BlkStatus.UNSUPP, `${name}: unknown flags 0x${flags.toString(16)}`);
    if (discard && flags & DISCARD_FLAG_UNMAP) return reject(base, BlkStatus.UNSUPP, 'discard with the unmap flag set');
    if (num > maxSectors)
      return reject(base, BlkStatus.IOERR, `${name}: ${num} sectors in one segment, at most ${maxSectors}`);
    if (sector + BigInt(num) > ctx.capacity) {
      return reject(
        base,
        BlkStatus.IOERR,
        `${name}: sectors [${sector}, ${sector + BigInt(num)}) pass the end of the disk`,
      );
    }
    segments.push({
      offset: sector << SECTOR_SHIFT,
      length: BigInt(num) << SECTOR_SHIFT,
      unmap: (flags & DISCARD_FLAG_UNMAP) !== 0,
    });
  }
  return { ...base, kind: discard ? 'discard' : 'write-zeroes', segments };
}

/** Bytes the device reports as written for a completed request (data + status byte). */
export function usedLength(req: BlkRequest, status: BlkStatusValue): number {
  if (status !== BlkStatus.OK) return 1;
  if (req.kind === 'read') return req.length + 1;
  if (req.kind === 'get-id') return req.data.reduce((s, v) => s + v.length, 0) + 1;
  return 1;
}
