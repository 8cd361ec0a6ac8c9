import { c, check, O_CLOEXEC, O_CREAT, O_RDWR } from '../../native/libc.js';
import type { GuestMemory, GuestMemoryLayout } from '../guest-memory.js';
import { GuestMemoryError } from '../errors.js';
import { mmapGuestMemory, totalSize } from './mmap.js';

/**
 * Guest RAM in a shared file mapping (e.g. on /dev/shm or hugetlbfs), so another process
 * (vhost-user backend, snapshot tool) can map the same pages. The file is created if
 * missing and grown to the total size; it is not deleted on close. The fd is owned by
 * the guest memory and closed by close().
 */
export function createSharedFileMemory(layout: GuestMemoryLayout): GuestMemory {
  const path = layout.path;
  if (!path) throw new GuestMemoryError('Backend', "the 'file' memory backend needs a path (machine.memoryPath)");
  let fd: number;
  try {
    fd = check('open', c.open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600), path);
  } catch (err) {
    throw new GuestMemoryError('Backend', `cannot open guest memory file: ${(err as Error).message}`, { path }, { cause: err });
  }
  try {
    check('ftruncate', c.ftruncate(fd, totalSize(layout)), path);
  } catch (err) {
    c.close(fd);
    throw new GuestMemoryError('Backend', `cannot size guest memory file: ${(err as Error).message}`, { path }, { cause: err });
  }
  return mmapGuestMemory(layout, (offset) => ({ kind: 'file', path, fd, offset }), fd, () => { c.close(fd); });
}
