import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { skipUnlessCi } from '../../../test/setup/environment.js';
import { LANDLOCK_SYSCALLS } from '../syscalls.js';
import { ARM64_REPLACED, ARM64_SYSCALLS as ARM64 } from './arm64.js';
import { X64_SYSCALLS as X64 } from './x64.js';

/** Debian's arm64 uapi headers (package linux-libc-dev-arm64-cross): asm/unistd.h of aarch64 (asm-generic's). */
const ARM64_INCLUDE = '/usr/aarch64-linux-gnu/include';

/** Every name -> number of a table (allowed, ENOSYS, named refusals, ioctl, clone). */
const numbers = (t: typeof ARM64): Record<string, number> => ({
  ...t.allowed,
  ...t.enosys,
  ...t.others,
  ioctl: t.ioctl,
  clone: t.clone,
});

/** Compiles and runs, with the host's gcc, a program printing `name __NR_name` (or `name -`) for each name. */
function measure(names: readonly string[]): Map<string, number | undefined> {
  const lines = ['#include <stdio.h>', '#include <asm/unistd.h>', 'int main(void) {'];
  for (const n of names) {
    lines.push(
      `#ifdef __NR_${n}`,
      `printf("${n} %d\\n", (int)(__NR_${n}));`,
      '#else',
      `printf("${n} -\\n");`,
      '#endif',
    );
  }
  lines.push('return 0; }');
  const dir = mkdtempSync(join(tmpdir(), 'tsvmm-arm64-unistd-'));
  try {
    writeFileSync(join(dir, 'p.c'), lines.join('\n'));
    execFileSync('gcc', ['-I', ARM64_INCLUDE, '-o', join(dir, 'p'), join(dir, 'p.c')], { timeout: 60_000 });
    const out = execFileSync(join(dir, 'p'), { encoding: 'utf8' });
    return new Map(
      out
        .trim()
        .split('\n')
        .map((l) => l.split(' '))
        .map(([k, v]) => [k!, v === '-' ? undefined : Number(v)]),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('core/security: the aarch64 host ABI (asm-generic system call numbers)', () => {
  it('has every name of the x86-64 lists, or maps it explicitly to an allowed call (or to none)', () => {
    for (const [name] of Object.entries(numbers(X64))) {
      if (Object.hasOwn(ARM64_REPLACED, name)) {
        const instead = ARM64_REPLACED[name];
        expect(Object.hasOwn(numbers(ARM64), name), `${name} is replaced, so not listed`).to.equal(false);
        if (instead !== null) expect(ARM64.allowed[instead], `${name} -> ${instead}`).to.be.a('number');
      } else {
        expect(numbers(ARM64)[name], name).to.be.a('number');
        // the same decision on both ABIs: allowed stays allowed, refused stays refused
        const where = (t: typeof X64) => (Object.hasOwn(t.allowed, name) ? 'allowed' : 'not allowed');
        expect(where(ARM64), name).to.equal(where(X64));
      }
    }
    // and nothing beyond the x86-64 names: the arm64 list is the same list, in asm-generic's numbers
    for (const name of Object.keys(numbers(ARM64))) expect(numbers(X64)[name], name).to.be.a('number');
  });

  it('numbers a sample as include/uapi/asm-generic/unistd.h does (no duplicates)', () => {
    // read from the kernel's asm-generic/unistd.h
    const sample = {
      ioctl: 29,
      openat: 56,
      close: 57,
      read: 63,
      write: 64,
      newfstatat: 79,
      exit_group: 94,
      futex: 98,
      epoll_pwait: 22,
      ppoll: 73,
      mmap: 222,
      clone: 220,
      execve: 221,
      ptrace: 117,
      clone3: 435,
      seccomp: 277,
      rseq: 293,
    };
    for (const [name, nr] of Object.entries(sample)) expect(numbers(ARM64)[name], name).to.equal(nr);
    const all = Object.values(numbers(ARM64));
    expect(new Set(all).size, 'each number once').to.equal(all.length);
    // Landlock's numbers are the same on every ABI (syscalls.ts)
    expect(Object.values(LANDLOCK_SYSCALLS)).to.deep.equal([444, 445, 446]);
  });

  it('matches gcc and the arm64 <asm/unistd.h> for every name, and lacks what it replaces', function () {
    if (!existsSync(join(ARM64_INCLUDE, 'asm/unistd.h')))
      skipUnlessCi(this, `${ARM64_INCLUDE}/asm/unistd.h is missing (Debian linux-libc-dev-arm64-cross)`);
    this.timeout(90_000);
    try {
      execFileSync('gcc', ['--version'], { stdio: 'ignore' });
    } catch {
      skipUnlessCi(this, 'gcc is not installed (Debian gcc, libc6-dev)');
    }
    const want = numbers(ARM64);
    const got = measure([...Object.keys(want), ...Object.keys(ARM64_REPLACED), ...Object.keys(LANDLOCK_SYSCALLS)]);
    for (const [name, nr] of Object.entries(want)) expect(got.get(name), name).to.equal(nr);
    for (const name of Object.keys(ARM64_REPLACED)) expect(got.get(name), `${name} on aarch64`).to.equal(undefined);
    for (const [name, nr] of Object.entries(LANDLOCK_SYSCALLS)) expect(got.get(name), name).to.equal(nr);
  });
});
