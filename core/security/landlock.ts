import { closeSync, openSync, statSync } from 'node:fs';
import { errno, errnoName, hardening } from '../native/libc.js';
import { SecurityError } from './seccomp.js';
import { LANDLOCK_SYSCALLS as SYS } from './syscalls.js';

/** Landlock filesystem rights (uapi linux/landlock.h). */
export const FS = {
  EXECUTE: 1 << 0,
  WRITE_FILE: 1 << 1,
  READ_FILE: 1 << 2,
  READ_DIR: 1 << 3,
  REMOVE_DIR: 1 << 4,
  REMOVE_FILE: 1 << 5,
  MAKE_CHAR: 1 << 6,
  MAKE_DIR: 1 << 7,
  MAKE_REG: 1 << 8,
  MAKE_SOCK: 1 << 9,
  MAKE_FIFO: 1 << 10,
  MAKE_BLOCK: 1 << 11,
  MAKE_SYM: 1 << 12,
  REFER: 1 << 13,
  TRUNCATE: 1 << 14,
} as const;
const FILE_RIGHTS = FS.EXECUTE | FS.WRITE_FILE | FS.READ_FILE | FS.TRUNCATE;
const LANDLOCK_CREATE_RULESET_VERSION = 1;
const LANDLOCK_RULE_PATH_BENEATH = 1;
const O_PATH = 0o10000000,
  O_CLOEXEC = 0o2000000;

/** One allowed path: `read` (files and listing, executing), or `write` (everything beneath). */
export interface LandlockRule {
  path: string;
  access: 'read' | 'write';
}

/** The kernel's Landlock ABI version, 0 where it has none (or it is disabled). */
export function landlockAbi(): number {
  const v = Number(hardening.syscallPtrIntInt(SYS.landlock_create_ruleset, null, 0, LANDLOCK_CREATE_RULESET_VERSION));
  return v > 0 ? v : 0;
}

/**
 * Rights this ABI handles: all filesystem rights of ABI 1, REFER (2) and TRUNCATE (3); device ioctls stay with seccomp.
 */
function handledRights(abi: number): number {
  let r = (1 << 13) - 1;
  if (abi >= 2) r |= FS.REFER;
  if (abi >= 3) r |= FS.TRUNCATE;
  return r;
}

function rightsFor(rule: LandlockRule, isDir: boolean, handled: number): number {
  const read = FS.READ_FILE | FS.EXECUTE | (isDir ? FS.READ_DIR : 0);
  const all = isDir ? handled : handled & FILE_RIGHTS;
  return (rule.access === 'read' ? read : all) & (isDir ? handled : handled & FILE_RIGHTS);
}

/**
 * Limits the filesystem of the calling thread (and every thread and process it starts from now on)
 * to `rules`; paths that do not exist are skipped. Landlock acts per thread: threads that already run
 * keep their access, so `vmm run --landlock` calls this before it starts the VMM process (landlock-run.ts).
 * Returns the ABI version used.
 */
export function restrictFilesystem(rules: readonly LandlockRule[]): number {
  const abi = landlockAbi();
  if (abi === 0)
    throw new SecurityError(
      'Unsupported',
      'this kernel has no Landlock (or it is turned off: see /sys/kernel/security/lsm); run without --landlock',
    );
  const handled = handledRights(abi);
  const attr = Buffer.alloc(8);
  attr.writeBigUInt64LE(BigInt(handled), 0);
  // SAFETY: attr lives through the call; the kernel returns a new fd we own and close below.
  const ruleset = Number(hardening.syscallPtrIntInt(SYS.landlock_create_ruleset, attr, 8, 0));
  if (ruleset < 0) throw new SecurityError('Landlock', `landlock_create_ruleset failed: ${errnoName(errno())}`);
  try {
    for (const rule of rules) {
      let isDir: boolean;
      try {
        isDir = statSync(rule.path).isDirectory();
      } catch {
        continue;
      }
      const fd = openSync(rule.path, O_PATH | O_CLOEXEC);
      try {
        // struct landlock_path_beneath_attr { __u64 allowed_access; __s32 parent_fd; } __attribute__((packed))
        const beneath = Buffer.alloc(12);
        beneath.writeBigUInt64LE(BigInt(rightsFor(rule, isDir, handled)), 0);
        beneath.writeInt32LE(fd, 8);
        if (
          Number(
            hardening.syscallIntIntPtrInt(SYS.landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, beneath, 0),
          ) !== 0
        ) {
          throw new SecurityError('Landlock', `landlock_add_rule(${rule.path}) failed: ${errnoName(errno())}`);
        }
      } finally {
        closeSync(fd);
      }
    }
    const PR_SET_NO_NEW_PRIVS = 38;
    if (hardening.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) !== 0)
      throw new SecurityError('Landlock', `prctl(PR_SET_NO_NEW_PRIVS) failed: ${errnoName(errno())}`);
    if (Number(hardening.syscallIntInt(SYS.landlock_restrict_self, ruleset, 0)) !== 0) {
      throw new SecurityError('Landlock', `landlock_restrict_self failed: ${errnoName(errno())}`);
    }
  } finally {
    closeSync(ruleset);
  }
  return abi;
}
