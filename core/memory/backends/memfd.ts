import { c, check, MFD_CLOEXEC } from '../../native/libc.js';
import type { GuestMemory, GuestMemoryLayout } from '../guest-memory.js';
import { GuestMemoryError } from '../errors.js';
import { mmapGuestMemory, totalSize } from './mmap.js';

/** Guest RAM in an anonymous memfd (shareable by passing the fd). The fd is owned by the memory; close() closes it. */
export function createMemfdMemory(layout: GuestMemoryLayout): GuestMemory {
  let fd = -1;
  try {
    fd = check('memfd_create', c.memfdCreate('tsvmm-guest-ram', MFD_CLOEXEC));
    check('ftruncate', c.ftruncate(fd, totalSize(layout)));
  } catch (err) {
    if (fd >= 0) c.close(fd);
    throw new GuestMemoryError(
      'Backend',
      `cannot create memfd guest memory: ${(err as Error).message}`,
      {},
      { cause: err },
    );
  }
  return mmapGuestMemory(
    layout,
    (offset) => ({ kind: 'memfd', fd, offset }),
    fd,
    () => {
      c.close(fd);
    },
  );
}
