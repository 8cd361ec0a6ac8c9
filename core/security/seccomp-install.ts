import { addressOf, errno, errnoName, hardening } from '../native/libc.js';
import { thisHostSyscalls } from './syscalls.js';

const PR_SET_NO_NEW_PRIVS = 38;
const SECCOMP_SET_MODE_FILTER = 1;
/** seccomp(2) flag: install on every thread of the process (they must have no filter of their own). */
export const SECCOMP_FILTER_FLAG_TSYNC = 1;

/**
 * Sets no_new_privs on the calling thread and installs an encoded filter (struct sock_filter[], seccomp-filter.ts
 * encodeFilter) with `flags`: 0 for the calling thread alone (and the threads it starts later), TSYNC for every
 * thread. Returns undefined, or the reason it failed (errno name, or the thread that could not take a TSYNC filter).
 * Light on purpose (libc only): vCPU worker threads load it.
 */
export function installFilter(filter: Uint8Array, flags: number): string | undefined {
  // struct sock_fprog { unsigned short len; struct sock_filter *filter; } (pointer at offset 8)
  const fprog = Buffer.alloc(16);
  fprog.writeUInt16LE(filter.length / 8, 0);
  fprog.writeBigUInt64LE(addressOf(filter), 8);
  // no_new_privs is a per-thread flag: required for an unprivileged filter, inherited by threads started later
  if (hardening.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) !== 0)
    return `prctl(PR_SET_NO_NEW_PRIVS): ${errnoName(errno())}`;
  // SAFETY: `filter` and `fprog` stay referenced until the call returns; the kernel copies the program.
  const r = Number(
    hardening.syscallIntIntPtr(thisHostSyscalls().allowed.seccomp!, SECCOMP_SET_MODE_FILTER, flags, fprog),
  );
  if (r === 0) return undefined;
  return r > 0 ? `thread ${r} could not take the filter` : errnoName(errno());
}
