import * as fs from 'node:fs';
import { describeFileType } from '../../block/regular-file.js';
import type { GuestMemory, GuestMemoryLayout } from '../guest-memory.js';
import { GuestMemoryError } from '../errors.js';
import { validateLayout } from './layout.js';
import { mmapGuestMemory, totalSize } from './mmap.js';

/** An open guest memory file and whether this call created it (then it is removed again on failure). */
interface OpenedFile {
  fd: number;
  created: boolean;
}

/** Opens an existing file read-write, or creates it (O_EXCL, so a file that appears meanwhile is never taken over). */
function openOrCreate(path: string): OpenedFile {
  const { O_RDWR, O_CREAT, O_EXCL, O_NONBLOCK } = fs.constants;
  for (;;) {
    try {
      // O_NONBLOCK: a FIFO or device named here must not hang open(); the type is checked right after.
      return { fd: fs.openSync(path, O_RDWR | O_NONBLOCK), created: false };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    try {
      return { fd: fs.openSync(path, O_RDWR | O_CREAT | O_EXCL, 0o600), created: true };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
}

/**
 * Sizes the file as QEMU's memory-backend-file does: an empty (or new) file is grown to the
 * guest's memory; a file at least that large is used as it is (never shrunk: its first bytes are
 * the guest's RAM); a non-empty file smaller than the guest's memory is refused (never grown,
 * since what it holds was sized for something else).
 */
function sizeFile(path: string, fd: number, size: bigint): void {
  const st = fs.fstatSync(fd, { bigint: true });
  if (!st.isFile()) {
    const is = describeFileType(st);
    throw new GuestMemoryError(
      'Backend',
      `guest memory file ${path} is ${is}, not a regular file (machine.memoryPath)`,
      { path },
    );
  }
  if (st.size === 0n) {
    fs.ftruncateSync(fd, Number(size));
  } else if (st.size < size) {
    throw new GuestMemoryError(
      'Backend',
      `guest memory file ${path} holds ${st.size} bytes, less than the guest's ` +
        `${size} bytes of memory: refusing to resize a file that was there (machine.memoryPath; remove it or match ` +
        'machine.memory)',
      { path, fileSize: st.size, size },
    );
  }
}

/**
 * Guest RAM in a shared file mapping (e.g. on /dev/shm or hugetlbfs), so another process
 * (vhost-user backend, snapshot tool) can map the same pages. A missing or empty file is created
 * and grown to the total size; an existing one is never shrunk, and refused when smaller (see
 * sizeFile). The file is not deleted on close (only when this call created it and then failed).
 * The fd is owned by the guest memory and closed by close().
 */
export function createSharedFileMemory(layout: GuestMemoryLayout): GuestMemory {
  const path = layout.path;
  if (!path) throw new GuestMemoryError('Backend', "the 'file' memory backend needs a path (machine.memoryPath)");
  validateLayout(layout, true); // before the file is touched
  let file: OpenedFile;
  try {
    file = openOrCreate(path);
  } catch (err) {
    throw new GuestMemoryError(
      'Backend',
      `cannot open guest memory file ${path}: ${(err as Error).message}`,
      { path },
      { cause: err },
    );
  }
  const { fd, created } = file;
  const release = (): void => {
    fs.closeSync(fd);
  };
  const undo = (): void => {
    release();
    if (created) fs.rmSync(path, { force: true });
  };
  try {
    sizeFile(path, fd, totalSize(layout));
  } catch (err) {
    undo();
    if (err instanceof GuestMemoryError) throw err;
    throw new GuestMemoryError(
      'Backend',
      `cannot size guest memory file ${path}: ${(err as Error).message}`,
      { path },
      { cause: err },
    );
  }
  // mmapGuestMemory calls the release hook on a failed mapping too: undo then, a plain close later.
  let mapped = false;
  const memory = mmapGuestMemory(
    layout,
    (offset) => ({ kind: 'file', path, fd, offset }),
    fd,
    () => (mapped ? release() : undo()),
  );
  mapped = true;
  return memory;
}
