import { closeSync, constants, openSync, readSync } from 'node:fs';
import { hostSyscalls, LANDLOCK_SYSCALLS } from './syscalls.js';

/** Names of the numbers a report is likely to show: this host ABI's lists and the calls they leave out. */
const NAMES: Record<number, string> = (() => {
  const abi = hostSyscalls();
  if (!abi) return {};
  const all = {
    ...abi.allowed,
    ...abi.enosys,
    ...abi.others,
    ...LANDLOCK_SYSCALLS,
    ioctl: abi.ioctl,
    clone: abi.clone,
  };
  return Object.fromEntries(Object.entries(all).map(([k, v]) => [v, k]));
})();

/**
 * Opens the kernel log (/dev/kmsg) for reading without blocking; undefined where it cannot (no root, dmesg_restrict).
 * A parent that restricts itself (Landlock) opens it first and reads it after the child died.
 */
export function openKernelLog(): number | undefined {
  try {
    return openSync('/dev/kmsg', constants.O_RDONLY | constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
}

/** The kernel log's records from `fd` (openKernelLog) up to now; the caller closes it. */
function readKernelLog(fd: number): string[] {
  const out: string[] = [];
  const buf = Buffer.alloc(8192);
  for (;;) {
    let n: number;
    try {
      n = readSync(fd, buf, 0, buf.length, null);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EPIPE') continue; // records overwritten while reading
      break; // EAGAIN: the end
    }
    if (n <= 0) break;
    out.push(buf.toString('utf8', 0, n));
  }
  return out;
}

/**
 * The system call that made seccomp kill process `pid`, from the kernel's audit record
 * (`audit: type=1326 ... pid=N ... sig=31 ... syscall=M ... code=0x80000000`, logged for SECCOMP_RET_KILL_PROCESS);
 * undefined when the log holds none (not readable as this user, or rate-limited away). `kmsg`: an fd of
 * openKernelLog to read from (it stays open), else the log is opened for this call.
 */
export function seccompKilledSyscall(pid: number, kmsg?: number): number | undefined {
  const fd = kmsg ?? openKernelLog();
  if (fd === undefined) return undefined;
  let records: string[];
  try {
    records = readKernelLog(fd);
  } finally {
    if (kmsg === undefined) closeSync(fd);
  }
  let found: number | undefined;
  for (const rec of records) {
    if (!rec.includes('type=1326') || !new RegExp(`\\bpid=${pid}\\b`).test(rec)) continue;
    const m = /\bsig=31\b.*\bsyscall=(\d+)/.exec(rec);
    if (m) found = Number(m[1]);
  }
  return found;
}

/** One seccomp audit record (type=1326): the process, the call, the action taken (SECCOMP_RET_*: LOG, KILL_PROCESS). */
export interface SeccompRecord {
  pid: number;
  syscall: number;
  /** The call's name on this host ABI, where the lists know it. */
  name?: string;
  action: number;
}

/**
 * The seccomp audit records in the kernel log from `fd` (openKernelLog) up to now, for processes `pids` (all when
 * undefined): what `--seccomp log` let through (action SECCOMP_RET_LOG) or what killed a process, to build a list
 * on a new host (the kernel rate-limits these lines: run again after adding what was found).
 */
export function seccompRecords(fd: number, pids?: readonly number[]): SeccompRecord[] {
  const out: SeccompRecord[] = [];
  for (const rec of readKernelLog(fd).flatMap((r) => r.split('\n'))) {
    if (!rec.includes('type=1326')) continue;
    const pid = Number(/\bpid=(\d+)/.exec(rec)?.[1]);
    const m = /\bsyscall=(\d+).*\bcode=0x([0-9a-f]+)/.exec(rec);
    if (!m || (pids && !pids.includes(pid))) continue;
    const syscall = Number(m[1]);
    out.push({ pid, syscall, name: NAMES[syscall], action: parseInt(m[2]!, 16) });
  }
  return out;
}

/**
 * The one line a parent prints when its child VMM (`pid`) died of SIGSYS: "killed by seccomp (SIGSYS), syscall N
 * (name)", or without the number where the kernel log does not say (then `vmm run --seccomp log` and dmesg find it).
 */
export function seccompDeathReport(pid: number, kmsg?: number): string {
  const nr = seccompKilledSyscall(pid, kmsg);
  if (nr === undefined) return 'killed by seccomp (SIGSYS); the kernel log (dmesg) names the system call';
  return `killed by seccomp (SIGSYS), syscall ${nr}${NAMES[nr] ? ` (${NAMES[nr]})` : ''}`;
}
