import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import type { GuestMemory } from '../../core/memory/guest-memory.js';
import { MigrationError } from './errors.js';
import { SNAPSHOT_PAGE, type MemoryImage } from './format.js';
import { hashExtents } from './memory-hash.js';

const ZERO_PAGE = Buffer.alloc(SNAPSHOT_PAGE);

/** Whether a page-sized view holds only zeros (memcmp through Buffer.compare). */
const isZeroPage = (page: Uint8Array): boolean => Buffer.compare(page, ZERO_PAGE) === 0;

/** The runs of non-zero pages in `bytes`, as [offset, length] pairs (offsets relative to `bytes`). */
export function nonZeroRuns(bytes: Uint8Array): [number, number][] {
  const runs: [number, number][] = [];
  let start = -1;
  for (let off = 0; off < bytes.length; off += SNAPSHOT_PAGE) {
    const zero = isZeroPage(bytes.subarray(off, off + SNAPSHOT_PAGE));
    if (!zero && start < 0) start = off;
    if (zero && start >= 0) {
      runs.push([start, off - start]);
      start = -1;
    }
  }
  if (start >= 0) runs.push([start, bytes.length - start]);
  return runs;
}

/** Writes `data` at `position` of `fd` completely (writeSync may write less than asked). */
function writeAll(fd: number, data: Uint8Array, position: number): void {
  let done = 0;
  while (done < data.length) done += fs.writeSync(fd, data, done, data.length - done, position + done);
}

/**
 * Writes every region of guest memory into `fd` (regions one after another), seeking over zero pages so the
 * file stays sparse, synchronously (the VM must be paused: nothing may change the pages meanwhile). Returns
 * the memory image's description for the manifest, with a sha256 over the bytes written.
 */
export function writeMemoryImage(memory: GuestMemory, fd: number): MemoryImage {
  const hash = createHash('sha256');
  const regions: MemoryImage['regions'] = [];
  const extents: [number, number][] = [];
  let fileOffset = 0;
  // Adjacent GuestMemory regions (views of at most 1 GiB) of one RAM block are saved as they come.
  for (const r of memory.regions) {
    const size = r.bytes.length;
    regions.push({ start: Number(r.range.start.value), size, fileOffset });
    for (const [off, len] of nonZeroRuns(r.bytes)) {
      const data = r.bytes.subarray(off, off + len);
      writeAll(fd, data, fileOffset + off);
      hash.update(data);
      const last = extents[extents.length - 1];
      if (last && last[0] + last[1] === fileOffset + off) last[1] += len;
      else extents.push([fileOffset + off, len]);
    }
    fileOffset += size;
  }
  fs.ftruncateSync(fd, fileOffset);
  return { file: 'memory.bin', bytes: fileOffset, regions, extents, sha256: hash.digest('hex') };
}

/**
 * Checks a validated memory image description against itself and the guest: extents ascending, inside the file,
 * page-aligned; regions one after another from offset 0, covering the file; the file's size; then (unless `hash`
 * is false) the sha256 of its extents. Throws MigrationError 'Format' naming the first problem.
 */
export function checkMemoryImage(image: MemoryImage, path: string, hash = true): void {
  const bad = (why: string): never => {
    throw new MigrationError('Format', `snapshot memory ${path}: ${why}`);
  };
  let expect = 0;
  for (const r of image.regions) {
    if (r.fileOffset !== expect) bad(`region at 0x${r.start.toString(16)} does not follow the one before it`);
    expect += r.size;
  }
  if (expect !== image.bytes) bad(`the regions hold ${expect} bytes, the manifest says ${image.bytes}`);
  let end = -1;
  for (const [off, len] of image.extents) {
    if (off % SNAPSHOT_PAGE || len % SNAPSHOT_PAGE || len === 0) bad(`extent at ${off} is not whole pages`);
    if (off <= end) bad(`extent at ${off} overlaps or touches the one before it`);
    if (off + len > image.bytes) bad(`extent at ${off} leaves the ${image.bytes}-byte image`);
    end = off + len;
  }
  let fd: number;
  try {
    fd = fs.openSync(path, 'r');
  } catch (err) {
    return bad(`cannot open: ${(err as Error).message}`);
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) bad('not a regular file');
    if (st.size !== image.bytes) bad(`the file holds ${st.size} bytes, the manifest says ${image.bytes} (truncated?)`);
  } finally {
    fs.closeSync(fd);
  }
  if (!hash) return;
  let sum: string;
  try {
    sum = hashExtents(path, image.extents);
  } catch (err) {
    return bad((err as Error).message);
  }
  if (sum !== image.sha256) bad('checksum mismatch (the file was changed or damaged)');
}
