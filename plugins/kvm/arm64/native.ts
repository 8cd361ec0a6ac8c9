/**
 * ioctls with the arm64-only request numbers of ./abi.ts (the generic ones go through ../native.ts).
 * SAFETY: as ../native.ts: each Buffer is at least the size its request encodes; pointers stored in it
 * (kvm_one_reg.addr, kvm_device_attr.addr) point at Buffers the caller keeps alive for the call.
 */
import { c, errno, ERRNO } from '../../../core/native/libc.js';
import { ioctlError } from '../native.js';
import { KVM_ARM64, type KvmArm64IoctlName } from './abi.js';

/** An arm64 ioctl with a struct argument; retries on EINTR; returns the non-negative result. */
export function arm64Ioctl(fd: number, name: KvmArm64IoctlName, arg: Buffer, detail = ''): number {
  for (;;) {
    const r = Number(c.ioctlPtr(fd, KVM_ARM64[name], arg));
    if (r >= 0) return r;
    const e = errno();
    if (e !== ERRNO.EINTR) throw ioctlError(name, fd, e, detail);
  }
}
