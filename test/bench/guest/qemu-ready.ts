import { connect } from 'node:net';
import { join } from 'node:path';
import { launch } from './launch.js';
import { qemuBenchArgv, type GuestSpec } from './vmms.js';

/**
 * QEMU's "process start to ready": spawn with `-S` (machine built, kernel loaded, vCPUs created
 * and paused) and a QMP socket; ready = the QMP greeting arrives. Milliseconds since spawn.
 */
export async function qemuReadyMs(g: GuestSpec, name: string, timeoutMs = 60_000): Promise<number> {
  const sock = join(g.dir, `${name}.qmp`);
  const l = launch(qemuBenchArgv(g, ['-S', '-qmp', `unix:${sock},server=on,wait=off`]), { timeoutMs });
  try {
    const deadline = performance.now() + timeoutMs;
    while (performance.now() < deadline) {
      if (l.child.exitCode !== null)
        throw new Error(`qemu exited before QMP was ready: ${l.stderr.trim().slice(0, 200)}`);
      const at = await new Promise<number | undefined>((resolve) => {
        const s = connect(sock);
        s.once('data', () => {
          const t = performance.now();
          s.destroy();
          resolve(t);
        });
        s.once('error', () => {
          s.destroy();
          resolve(undefined);
        });
      });
      if (at !== undefined) return at - l.spawnAt;
      await new Promise((r) => setTimeout(r, 2));
    }
    throw new Error('QMP did not answer in time');
  } finally {
    await l.kill(1000);
  }
}
