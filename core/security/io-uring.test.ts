import { expect } from 'chai';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ioUringFds, ioUringProblem } from './io-uring.js';

describe('core/security io-uring: libuv rings that the seccomp filter would break', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsvmm-fd-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('finds the io_uring fds of a /proc fd folder (Node 22: one per event loop) and says what to do', () => {
    for (const [fd, to] of [
      ['0', '/dev/null'],
      ['3', 'anon_inode:[eventpoll]'],
      ['4', 'anon_inode:[io_uring]'],
      ['12', 'anon_inode:[io_uring]'],
      ['9', 'anon_inode:[eventfd]'],
    ])
      symlinkSync(to!, join(dir, fd!));
    expect(ioUringFds(dir)).to.deep.equal([4, 12]);
    expect(ioUringProblem(dir)).to.match(/2 io_uring instance\(s\) open .*fds 4, 12.*Node 20.*--seccomp false$/);
  });

  it('has nothing to say without rings (Node 20 here: libuv 1.46 sets none up)', () => {
    const none = mkdtempSync(join(tmpdir(), 'tsvmm-fd-'));
    symlinkSync('anon_inode:[eventpoll]', join(none, '3'));
    expect(ioUringProblem(none)).to.equal(undefined);
    rmSync(none, { recursive: true, force: true });
    if (process.versions.uv.startsWith('1.46.')) expect(ioUringProblem()).to.equal(undefined);
  });
});
