/**
 * passt (user-mode networking: the guest reaches the host's network with no root and no tap) for the
 * linux-tier tests, started inside the sandbox's L1.
 *
 * passt takes the guest's addresses from the host interface with the default route. L1 has no network, so
 * a template is made: a tap held open by this process (it disappears with its fd, routes included, however
 * the test ends) with 10.0.2.15/24 and a default route via 10.0.2.2. passt then hands the guest 10.0.2.15 and
 * maps connections to the gateway 10.0.2.2 to the host's loopback. passt drops to an unprivileged user and
 * isolates itself (user namespace, pivot_root): in L1 this needs the stage script's real root mount.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { TapBackend } from '../../plugins/virtio-net/backends/tap.js';

/** The template interface's name in L1. */
const TEMPLATE = 'tsvmmpt0';
/** What passt prints once its socket listens. */
const READY = 'You can now start qemu';

/** The guest's side of passt's network. */
export const PASST_NET = { guest: '10.0.2.15', prefix: 24, gateway: '10.0.2.2' } as const;

/** A running passt. */
export interface Passt {
  /** Its Unix stream socket (the virtio-net `stream` back end's path). */
  readonly socket: string;
  /** What passt wrote so far (stdout and stderr). */
  log(): string;
  /** Kills passt and removes the template interface and the socket. */
  stop(): void;
}

/** Starts passt on a fresh socket and waits (at most `timeoutMs`) until it listens; throws with its log. */
export async function startPasst(timeoutMs = 60_000): Promise<Passt> {
  const socket = `/tmp/tsvmm-passt-${process.pid}.sock`; // passt (user nobody) must be able to create it
  fs.rmSync(socket, { force: true });
  const tap = TapBackend.open({ name: TEMPLATE, create: true, queuePairs: 1 });
  let child: ChildProcess | undefined;
  let log = '';
  const stop = (): void => {
    child?.kill('SIGKILL');
    tap.close();
    fs.rmSync(socket, { force: true });
  };
  try {
    execFileSync('ip', ['link', 'set', 'dev', TEMPLATE, 'up']);
    execFileSync('ip', ['addr', 'replace', `${PASST_NET.guest}/${PASST_NET.prefix}`, 'dev', TEMPLATE]);
    execFileSync('ip', ['route', 'replace', 'default', 'via', PASST_NET.gateway, 'dev', TEMPLATE]);
    // -f: foreground (we own it); -e: log to stderr; --runas: L1's /etc/passwd has no 'nobody'
    child = spawn('passt', ['-f', '-e', '-4', '--runas', '65534:65534', '-s', socket], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const p = child;
    const add = (d: Buffer): void => {
      log += d.toString().replace(/^Failed to send \d+ bytes to syslog\n/gm, '');
    };
    p.stdout!.on('data', add);
    p.stderr!.on('data', add);
    await new Promise<void>((resolve, reject) => {
      const end = Date.now() + timeoutMs;
      const t = setInterval(() => {
        if (log.includes(READY)) resolve();
        else if (p.exitCode !== null || p.signalCode !== null) reject(new Error(`passt ended: ${log.slice(-1500)}`));
        else if (Date.now() > end)
          reject(new Error(`passt did not listen within ${timeoutMs} ms: ${log.slice(-1500)}`));
        else return;
        clearInterval(t);
      }, 50);
      p.on('error', (err) => (clearInterval(t), reject(new Error(`passt: ${err.message}`))));
    });
  } catch (err) {
    stop();
    throw err;
  }
  return { socket, log: () => log, stop };
}
