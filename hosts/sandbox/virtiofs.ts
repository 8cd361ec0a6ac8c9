import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { trackChild } from './boot.js';
import { SandboxError } from './errors.js';

/** QEMU's virtiofsd (Debian package qemu-system-common, a dependency of qemu-system-x86). */
export const VIRTIOFSD = '/usr/lib/qemu/virtiofsd';

/** What virtiofsd prints once its socket listens (QEMU 7.2's C daemon). */
const READY = 'Waiting for vhost-user socket connection';

/** One host folder served to L1 over virtio-fs. */
export interface VirtiofsShare {
  /** The host folder. */
  dir: string;
  /** The mount tag L1 mounts it by. */
  tag: string;
  /** QEMU arguments that attach it (a chardev and a vhost-user-fs-device on virtio-mmio). */
  qemuArgs: string[];
  /** Ends the daemon (it also ends by itself when QEMU closes the connection). */
  stop(): void;
  /** The daemon's messages (stderr), for a report. */
  log(): string;
  /** The daemon's process id (undefined when it could not be spawned). */
  readonly pid: number | undefined;
  /** `cb(why)` runs if the daemon ends while it was not asked to (L1 then cannot reach the folder). */
  onUnexpectedExit(cb: (why: string) => void): void;
}

/**
 * The daemon's options. `cache=auto` with the default `no_writeback`: every write L1 makes is sent
 * to virtiofsd at once and written to the host file (the host page cache holds it: a crash of QEMU
 * or L1 loses nothing written); an fsync in L1 becomes an fsync of the host file, so a guest FLUSH
 * acknowledged by the VMM in L1 is on the host's disk. Locks (`no_posix_lock`, the default) are
 * L1's alone: the host does not see them.
 */
export function virtiofsdArgs(dir: string, socket: string): string[] {
  return [
    `--socket-path=${socket}`,
    '-o',
    `source=${dir}`,
    '-o',
    'cache=auto',
    '-o',
    'no_writeback',
    '-o',
    'sandbox=namespace',
    '-o',
    'log_level=info',
  ];
}

/** A folder name virtiofsd can take as `source=` (its option parser splits on commas). */
function checkSourceDir(dir: string): void {
  if (dir.includes(',')) {
    throw new SandboxError(
      'Share',
      `cannot share ${dir} into the sandbox: virtiofsd cannot take a folder name with a comma`,
      { dir },
    );
  }
}

/**
 * Starts virtiofsd for `dir`, its socket under `socketDir`, and resolves once it listens. Rejects
 * with one line (the daemon's own words) when it cannot start or ends before it listens.
 */
export function startVirtiofsd(
  dir: string,
  socketDir: string,
  index: number,
  binary = VIRTIOFSD,
): Promise<VirtiofsShare> {
  checkSourceDir(dir);
  if (!existsSync(binary)) {
    return Promise.reject(
      new SandboxError(
        'NoSandboxTools',
        `the sandbox shares disks with virtiofsd, which is missing: ${binary} (apt-get install qemu-system-common)`,
        { binary },
      ),
    );
  }
  const socket = join(socketDir, `virtiofs-${index}.sock`);
  const tag = `tsvmm-share-${index}`;
  const id = `vfs${index}`;
  let stderr = '';
  let child: ChildProcess;
  try {
    child = spawn(binary, virtiofsdArgs(dir, socket), { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    return Promise.reject(new SandboxError('Share', `cannot start ${binary}: ${(e as Error).message}`, { binary }));
  }
  trackChild(child);
  return new Promise((resolve, reject) => {
    let settled = false;
    let stopping = false;
    let unexpected: ((why: string) => void) | undefined;
    const said = () =>
      stderr
        .trim()
        .split('\n')
        .filter((l) => !l.includes(READY))
        .slice(-3)
        .join(' / ');
    const share: VirtiofsShare = {
      dir,
      tag,
      qemuArgs: [
        '-chardev',
        `socket,id=${id},path=${socket}`,
        '-device',
        `vhost-user-fs-device,chardev=${id},tag=${tag}`,
      ],
      stop: () => {
        stopping = true;
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill('SIGTERM');
        // seen once: a daemon that outlived SIGTERM (and kept the caller's event loop alive)
        const force = setTimeout(() => child.kill('SIGKILL'), 2000).unref();
        child.once('exit', () => clearTimeout(force));
      },
      log: () => stderr,
      pid: child.pid,
      onUnexpectedExit: (cb) => {
        unexpected = cb;
      },
    };
    const fail = (why: string) => {
      if (settled) {
        if (!stopping) unexpected?.(`virtiofsd serving ${dir} ${why}${said() ? `: ${said()}` : ''}`);
        return;
      }
      settled = true;
      share.stop();
      reject(
        new SandboxError(
          'Share',
          `cannot share ${dir} into the sandbox: virtiofsd ${why}${said() ? `: ${said()}` : ''}`,
          { dir },
        ),
      );
    };
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (s: string) => {
      stderr += s;
      if (!settled && stderr.includes(READY) && existsSync(socket)) {
        settled = true;
        resolve(share);
      }
    });
    child.on('error', (e) => fail(`could not run (${e.message})`));
    child.on('exit', (code, sig) =>
      fail(`${settled ? 'ended' : 'ended before it listened'} (${sig ?? `status ${code}`})`),
    );
  });
}
