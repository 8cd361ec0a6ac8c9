import * as fs from 'node:fs';
import type { GuestMemory, GuestMemoryLayout } from '../guest-memory.js';
import { GuestMemoryError } from '../errors.js';
import { validateLayout } from './layout.js';
import { mmapGuestMemory, totalSize } from './mmap.js';

/**
 * Guest RAM mapped privately (copy-on-write) from a file that holds it, regions one after another from
 * offset 0: a restored snapshot's memory. Nothing is copied up front; a page is read from the file when the
 * guest first touches it, and a write gives this process its own copy — the file never changes, so several
 * VMs (clones) can map one file and share its unwritten pages through the page cache. The file is opened
 * read-only and must be a regular file at least as large as the layout; the fd is closed by close().
 */
export function createPrivateFileMemory(layout: GuestMemoryLayout): GuestMemory {
  const path = layout.path;
  if (!path) throw new GuestMemoryError('Backend', 'the private file memory backend needs a path');
  validateLayout(layout, true);
  let fd: number;
  try {
    fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (err) {
    throw new GuestMemoryError('Backend', `cannot open guest memory file ${path}: ${(err as Error).message}`, {
      path,
    });
  }
  try {
    const st = fs.fstatSync(fd, { bigint: true });
    if (!st.isFile())
      throw new GuestMemoryError('Backend', `guest memory file ${path} is not a regular file`, { path });
    const size = totalSize(layout);
    if (st.size < size)
      throw new GuestMemoryError('Backend', `guest memory file ${path} holds ${st.size} bytes, the guest has ${size}`, {
        path,
        fileSize: st.size,
        size,
      });
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
  // Private pages are this process's own, like anonymous memory: nothing another process could share.
  return mmapGuestMemory(
    layout,
    () => ({ kind: 'anonymous' }),
    fd,
    () => fs.closeSync(fd),
    'private',
  );
}
