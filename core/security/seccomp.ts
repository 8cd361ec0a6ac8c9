import { VmmError } from '../errors.js';
import { addressOf, errno, errnoName, hardening } from '../native/libc.js';
import { buildSeccompFilter, encodeFilter } from './seccomp-filter.js';
import { ALLOWED_SYSCALLS, SYS } from './syscalls.js';

/**
 * `--seccomp`: `true` kills the process on a call outside the allow-list, `log` only logs it, `false` installs nothing.
 */
export type SeccompMode = 'true' | 'log' | 'false';
/** The accepted `--seccomp` values, in the order help texts list them. */
export const SECCOMP_MODES: readonly SeccompMode[] = ['true', 'log', 'false'];

/**
 * The error class of core/security: installing the seccomp filter failed ('Seccomp'), restricting the filesystem with
 * Landlock failed ('Landlock'), or the kernel lacks what was asked for ('Unsupported').
 */
export class SecurityError extends VmmError<'Seccomp' | 'Landlock' | 'Unsupported'> {}

const PR_SET_NO_NEW_PRIVS = 38;
const SECCOMP_SET_MODE_FILTER = 1;
const SECCOMP_FILTER_FLAG_TSYNC = 1;

/** What installSeccomp did, for the log line. */
export interface SeccompInstalled {
  mode: SeccompMode;
  instructions: number;
  allowed: number;
}

/**
 * Sets no_new_privs and installs the VMM's filter on every thread of the process (TSYNC); threads
 * started later inherit it. Call once, after set-up. A call outside the list then kills the whole
 * process with SIGSYS (its exit status is 159, "Bad system call"; the kernel logs
 * `audit: type=1326 ... syscall=N` when auditing is on), or in `log` mode is logged and runs.
 * Filters cannot be removed: the tests run this in a child process.
 */
export function installSeccomp(mode: SeccompMode): SeccompInstalled | undefined {
  if (mode === 'false') return undefined;
  const program = buildSeccompFilter(mode === 'true' ? 'kill' : 'log');
  const filter = encodeFilter(program);
  // struct sock_fprog { unsigned short len; struct sock_filter *filter; } (pointer at offset 8)
  const fprog = Buffer.alloc(16);
  fprog.writeUInt16LE(program.length, 0);
  fprog.writeBigUInt64LE(addressOf(filter), 8);
  if (hardening.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) !== 0) {
    throw new SecurityError('Seccomp', `prctl(PR_SET_NO_NEW_PRIVS) failed: ${errnoName(errno())}`);
  }
  // SAFETY: `filter` and `fprog` stay referenced until the call returns; the kernel copies the program.
  const r = Number(hardening.syscallIntIntPtr(SYS.seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, fprog));
  if (r !== 0) {
    const why = r > 0 ? `thread ${r} could not take the filter` : errnoName(errno());
    throw new SecurityError(
      'Seccomp',
      `seccomp(SECCOMP_SET_MODE_FILTER, TSYNC) failed: ${why}; run with --seccomp false to go without`,
    );
  }
  return { mode, instructions: program.length, allowed: Object.keys(ALLOWED_SYSCALLS).length };
}
