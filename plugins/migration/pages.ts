import type { VmParts } from './vm-parts.js';
import { MigrationError } from './errors.js';
import { SNAPSHOT_PAGE } from './format.js';
import { FrameType, PAGES_PER_FRAME, type FrameWriter } from './frames.js';

const ZERO_PAGE = Buffer.alloc(SNAPSHOT_PAGE);
/**
 * Pages a pre-copy round looks at (compares, copies) between two turns of the event loop: the guest's devices
 * (serial, virtio, timers) are served on this thread, so a round that never gave it back would stall the guest
 * for the whole scan (round 1 goes through all of memory).
 */
export const YIELD_PAGES = 1024;

const nextTurn = (): Promise<void> => new Promise((r) => setImmediate(r));

/** The memory-file pages as views of guest memory: page `i` -> its bytes. */
export function pageViews(p: VmParts): (i: number) => Uint8Array {
  const table: { page0: number; bytes: Uint8Array }[] = [];
  let page = 0;
  for (const r of p.memory.regions) {
    table.push({ page0: page, bytes: r.bytes });
    page += r.bytes.length / SNAPSHOT_PAGE;
  }
  return (i) => {
    let t = table[0]!;
    for (const e of table) if (e.page0 <= i) t = e;
    const off = (i - t.page0) * SNAPSHOT_PAGE;
    return t.bytes.subarray(off, off + SNAPSHOT_PAGE);
  };
}

/**
 * Sends the pages marked in `dirty` (runs of up to PAGES_PER_FRAME pages), zero pages as Zeros frames (or not at
 * all when `skipZero`: the destination starts from zeros). With `copy` every page is copied before the first
 * frame goes out (the final round: what goes out is the instant of the stop); without it the event loop gets a
 * turn every YIELD_PAGES pages looked at. Returns the bytes of page data sent.
 */
export async function sendPages(
  w: FrameWriter,
  view: (i: number) => Uint8Array,
  dirty: Uint8Array,
  o: { skipZero: boolean; copy: boolean; signal?: AbortSignal },
): Promise<number> {
  let sent = 0;
  const frames: { offset: number; data: Uint8Array[] }[] = [];
  let looked = 0;
  let turnAt = YIELD_PAGES;
  for (let i = 0; i < dirty.length;) {
    if (!o.copy && looked >= turnAt) {
      turnAt = looked + YIELD_PAGES;
      await nextTurn();
    }
    if (!dirty[i]) {
      i++;
      continue;
    }
    const page = view(i);
    if (Buffer.compare(page, ZERO_PAGE) === 0) {
      let n = 1;
      while (i + n < dirty.length && n < YIELD_PAGES && dirty[i + n] && Buffer.compare(view(i + n), ZERO_PAGE) === 0)
        n++;
      looked += n;
      if (!o.skipZero) {
        const z = Buffer.alloc(16);
        z.writeBigUInt64LE(BigInt(i * SNAPSHOT_PAGE), 0);
        z.writeBigUInt64LE(BigInt(n * SNAPSHOT_PAGE), 8);
        frames.push({ offset: -1, data: [z] });
      }
      i += n;
      continue;
    }
    const data: Uint8Array[] = [];
    const start = i;
    while (i < dirty.length && dirty[i] && data.length < PAGES_PER_FRAME) {
      const v = view(i);
      if (Buffer.compare(v, ZERO_PAGE) === 0) break;
      data.push(Buffer.from(v)); // a copy: the socket may send later, and the hash must match what it sends
      i++;
    }
    looked += Math.max(data.length, 1);
    frames.push({ offset: start * SNAPSHOT_PAGE, data });
    if (!o.copy) {
      sent += await flush(w, frames, o.signal);
    }
  }
  sent += await flush(w, frames, o.signal);
  return sent;
}

async function flush(
  w: FrameWriter,
  frames: { offset: number; data: Uint8Array[] }[],
  signal?: AbortSignal,
): Promise<number> {
  let sent = 0;
  for (const f of frames.splice(0)) {
    if (signal?.aborted) throw new MigrationError('Cancelled', 'the migration was cancelled');
    if (f.offset < 0) {
      await w.send(FrameType.Zeros, f.data[0]!);
      continue;
    }
    const head = Buffer.alloc(8);
    head.writeBigUInt64LE(BigInt(f.offset));
    await w.send(FrameType.Pages, head, ...f.data);
    sent += f.data.length * SNAPSHOT_PAGE;
  }
  return sent;
}
