import type { DiskBackend } from '../../core/block/disk.js';
import { BlkStatus, type BlkStatusValue, MAX_IO_PIECE } from './constants.js';
import type { BlkQueueMetrics } from './metrics.js';
import type { BlkRequest } from './request.js';

/** Serial bytes for GET_ID: the configured serial, ASCII, zero-padded / cut to `n`. */
export function serialBytes(serial: string, n: number): Uint8Array {
  const out = new Uint8Array(n);
  out.set(new TextEncoder().encode(serial).subarray(0, n));
  return out;
}

/** One piece of a read or write: where on the disk, and the views of guest memory it covers. */
export interface IoPiece {
  readonly offset: bigint;
  readonly buffers: Uint8Array[];
}

/**
 * Cuts a request's buffers into consecutive pieces of at most `max` bytes (sub-views, no copy);
 * `max` is a multiple of the sector size, so every piece starts on a sector.
 */
export function* ioPieces(offset: bigint, buffers: readonly Uint8Array[], max = MAX_IO_PIECE): Generator<IoPiece> {
  let piece: Uint8Array[] = [];
  let size = 0;
  let at = offset;
  for (const b of buffers) {
    for (let off = 0; off < b.length;) {
      const n = Math.min(b.length - off, max - size);
      piece.push(off === 0 && n === b.length ? b : b.subarray(off, off + n));
      size += n;
      off += n;
      if (size === max) {
        yield { offset: at, buffers: piece };
        at += BigInt(size);
        piece = [];
        size = 0;
      }
    }
  }
  if (piece.length > 0) yield { offset: at, buffers: piece };
}

/** What executing a request needs: the disk, the GET_ID serial, write-through mode, metrics and a failure logger. */
export interface ExecuteOptions {
  readonly disk: DiskBackend;
  readonly serial: string;
  /** The driver did not negotiate FLUSH: the device is write-through, so every write is flushed. */
  readonly writeThrough: boolean;
  readonly metrics: BlkQueueMetrics;
  /** Called with a disk failure (for the log); the guest sees IOERR. */
  readonly onError: (err: unknown, req: BlkRequest) => void;
  /**
   * True once the queue stopped (the driver reset the device): a read or write starts no further piece, so no
   * guest memory the driver may already reuse is written (or sent to the disk) after the piece at the disk ends.
   */
  readonly stopped?: () => boolean;
}

/** Carries out the pieces one after another; false when the queue stopped before all of them went to the disk. */
async function pieces(
  req: { offset: bigint; length: number; data: readonly Uint8Array[] },
  o: ExecuteOptions,
  io: (offset: bigint, buffers: Uint8Array[]) => Promise<void>,
): Promise<boolean> {
  if (req.length <= MAX_IO_PIECE) {
    // One piece (every request Linux sends by default): no generator, no piece objects.
    if (o.stopped?.()) return false;
    await io(req.offset, req.data as Uint8Array[]);
    return true;
  }
  for (const p of ioPieces(req.offset, req.data)) {
    if (o.stopped?.()) return false;
    await io(p.offset, p.buffers);
  }
  return true;
}

/** Carries out a validated request on the disk; resolves with the status byte. Never rejects. */
export async function executeRequest(req: BlkRequest, o: ExecuteOptions): Promise<BlkStatusValue> {
  const m = o.metrics;
  try {
    switch (req.kind) {
      case 'reject':
        return req.status;
      case 'read':
        if (!(await pieces(req, o, (at, b) => o.disk.read(at, b)))) return BlkStatus.IOERR;
        m.reads++;
        m.readBytes += req.length;
        return BlkStatus.OK;
      case 'write':
        if (!(await pieces(req, o, (at, b) => o.disk.write(at, b)))) return BlkStatus.IOERR;
        if (o.writeThrough) await o.disk.flush();
        m.writes++;
        m.writeBytes += req.length;
        return BlkStatus.OK;
      case 'flush':
        await o.disk.flush();
        m.flushes++;
        return BlkStatus.OK;
      case 'get-id': {
        const n = req.data.reduce((s, v) => s + v.length, 0);
        const id = serialBytes(o.serial, n);
        let off = 0;
        for (const v of req.data) {
          v.set(id.subarray(off, off + v.length));
          off += v.length;
        }
        m.getIds++;
        return BlkStatus.OK;
      }
      case 'discard':
        if (!o.disk.supportsDiscard) return BlkStatus.UNSUPP;
        for (const s of req.segments) await o.disk.discard(s.offset, s.length);
        m.discards++;
        return BlkStatus.OK;
      case 'write-zeroes':
        if (!o.disk.supportsWriteZeroes) return BlkStatus.UNSUPP;
        for (const s of req.segments) await o.disk.writeZeroes(s.offset, s.length, s.unmap);
        m.writeZeroes++;
        return BlkStatus.OK;
    }
  } catch (err) {
    o.onError(err, req);
    return BlkStatus.IOERR;
  }
}
