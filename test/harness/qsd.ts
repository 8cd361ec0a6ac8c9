import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Starts qemu-storage-daemon exporting the file `image` as a writable vhost-user-blk device on the Unix socket
 * `sock` (--daemonize: returns once the export listens; its pid file in `dir`). Returns the daemon's pid.
 */
export function startQsd(dir: string, image: string, sock: string, binary = 'qemu-storage-daemon'): number {
  const pidfile = join(dir, 'qsd.pid');
  rmSync(pidfile, { force: true });
  execFileSync(
    binary,
    [
      '--blockdev',
      `driver=file,node-name=file0,filename=${image}`,
      '--export',
      `type=vhost-user-blk,id=exp0,node-name=file0,addr.type=unix,addr.path=${sock},writable=on`,
      '--daemonize',
      '--pidfile',
      pidfile,
    ],
    { timeout: 30_000, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  return Number(readFileSync(pidfile, 'utf8').trim());
}
