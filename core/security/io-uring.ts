import { readdirSync, readlinkSync } from 'node:fs';

/** The fds of this process (or of `fdDir`, a /proc/<pid>/fd folder) that are io_uring instances. */
export function ioUringFds(fdDir = '/proc/self/fd'): number[] {
  const out: number[] = [];
  for (const name of readdirSync(fdDir)) {
    try {
      if (readlinkSync(`${fdDir}/${name}`) === 'anon_inode:[io_uring]') out.push(Number(name));
    } catch {
      // closed while listing (readdir's own fd among them)
    }
  }
  return out.sort((a, b) => a - b);
}

/**
 * Why the seccomp filter cannot go on in this process, or undefined: libuv 1.49 and later (Node 22+) sets up an
 * io_uring per event loop at start and batches epoll changes through it whatever UV_USE_IO_URING says; the filter
 * answers io_uring calls with ENOSYS (their requests would bypass it), which that libuv does not survive (it aborts:
 * "libuv: io_uring_enter(getevents): Function not implemented"). Node 20's libuv (the project's runtime) sets up none.
 */
export function ioUringProblem(fdDir?: string): string | undefined {
  const rings = ioUringFds(fdDir);
  if (!rings.length) return undefined;
  return (
    `Node ${process.version} (libuv ${process.versions.uv}) has ${rings.length} io_uring instance(s) open for its ` +
    `event loops (fds ${rings.join(', ')}), which the filter would refuse and libuv would abort on; run the VMM ` +
    'with Node 20 (libuv 1.46, no io_uring), or with --seccomp false'
  );
}
