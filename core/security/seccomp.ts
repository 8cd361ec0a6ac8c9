import { VmmError } from '../errors.js';
import { buildSeccompFilter, encodeFilter } from './seccomp-filter.js';
import { ioUringProblem } from './io-uring.js';
import { installFilter, SECCOMP_FILTER_FLAG_TSYNC } from './seccomp-install.js';
import { ABIS_WITH_LISTS, hostSyscalls } from './syscalls.js';
import type { SeccompMode } from './mode.js';

export { SECCOMP_MODES, type SeccompMode } from './mode.js';

/**
 * The error class of core/security: installing the seccomp filter failed ('Seccomp'), restricting the filesystem with
 * Landlock failed ('Landlock'), or the kernel lacks what was asked for ('Unsupported').
 */
export class SecurityError extends VmmError<'Seccomp' | 'Landlock' | 'Unsupported'> {}

/** What installSeccomp did, for the log line (`unsupported`: nothing, and why). */
export interface SeccompInstalled {
  mode: SeccompMode;
  instructions: number;
  allowed: number;
  unsupported?: string;
}

/**
 * Sets no_new_privs and installs the VMM's filter on every thread of the process (TSYNC); threads
 * started later inherit it. Call once, after set-up. A call outside the list then kills the whole
 * process with SIGSYS (its exit status is 159, "Bad system call"; the kernel logs
 * `audit: type=1326 ... syscall=N` when auditing is on), or in `log` mode is logged and runs.
 * Filters cannot be removed: the tests run this in a child process. On a host ABI without lists (syscalls.ts)
 * nothing is installed and the result says why; where libuv has io_uring rings open (Node 22+) it throws (io-uring.ts).
 */
export function installSeccomp(mode: SeccompMode): SeccompInstalled | undefined {
  if (mode === 'false') return undefined;
  const abi = hostSyscalls();
  if (!abi) {
    const only = ABIS_WITH_LISTS.join(', ');
    const unsupported = `no system call lists for host architecture '${process.arch}' (only ${only})`;
    return { mode, instructions: 0, allowed: 0, unsupported };
  }
  // a libuv that batches through io_uring would abort at its next epoll change: say so instead
  const rings = ioUringProblem();
  if (rings !== undefined) throw new SecurityError('Unsupported', `seccomp: no filter possible: ${rings}`);
  const program = buildSeccompFilter(mode === 'true' ? 'kill' : 'log', undefined, abi);
  const why = installFilter(encodeFilter(program), SECCOMP_FILTER_FLAG_TSYNC);
  if (why !== undefined) {
    throw new SecurityError(
      'Seccomp',
      `seccomp(SECCOMP_SET_MODE_FILTER, TSYNC) failed: ${why}; run with --seccomp false to go without`,
    );
  }
  return { mode, instructions: program.length, allowed: Object.keys(abi.allowed).length };
}
