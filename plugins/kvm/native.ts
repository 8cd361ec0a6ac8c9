/**
 * The KVM backend's only door to the kernel: ioctl on KVM fds through core's
 * koffi libc bindings, turning -1 into a KvmError that names the request.
 * SAFETY: `arg` Buffers are passed by address and must hold at least the size
 * encoded in the request number (callers allocate them from ./abi/structs.ts);
 * koffi pins them for the duration of the call only — the kernel keeps no pointer
 * except where noted at the call site (dirty log bitmap: only during the call).
 */
import { c, errno, ERRNO, errnoName } from '../../core/native/libc.js';
import { KvmError } from './errors.js';
import { KVM, type KvmIoctlName } from './abi/ioctls.js';

export { ERRNO };

/** An ioctl whose argument is a struct buffer. Retries on EINTR. Returns the (non-negative) result. */
export function ioctlBuf(fd: number, name: KvmIoctlName, arg: Buffer): number {
  for (;;) {
    const r = Number(c.ioctlPtr(fd, KVM[name], arg));
    if (r >= 0) return r;
    const e = errno();
    if (e !== ERRNO.EINTR) throw ioctlError(name, fd, e);
  }
}

/** An ioctl whose argument is an integer (or none). Retries on EINTR. */
export function ioctlNum(fd: number, name: KvmIoctlName, arg: number | bigint = 0): number {
  for (;;) {
    const r = Number(c.ioctlInt(fd, KVM[name], arg));
    if (r >= 0) return r;
    const e = errno();
    if (e !== ERRNO.EINTR) throw ioctlError(name, fd, e);
  }
}

/** Like ioctlNum but returns -errno instead of throwing (for probing calls). */
export function ioctlNumRaw(fd: number, name: KvmIoctlName, arg: number | bigint = 0): number {
  const r = Number(c.ioctlInt(fd, KVM[name], arg));
  return r >= 0 ? r : -errno();
}

/** The KvmError ('Ioctl') for a failed KVM ioctl: which request, on which fd, and the errno by name. */
export function ioctlError(name: string, fd: number, e: number, detail = ''): KvmError {
  return new KvmError('Ioctl', `KVM_${name} on fd ${fd} failed: ${errnoName(e)} (${e})${detail ? `: ${detail}` : ''}`, {
    ioctl: name,
    fd,
    errno: e,
  });
}
