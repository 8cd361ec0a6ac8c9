import { join, relative } from 'node:path';
import { projectLayout } from '../../../hosts/sandbox/sandbox.js';
import { apiRequest } from '../../../hosts/api/client.js';
import { launch } from './launch.js';

/**
 * Ours for `start.api`: spawn `vmm serve --api-socket` and ask vmm.ping until it answers 200 (a connect to a socket
 * that is not there yet fails at once; retried every 2 ms, as qemuReadyMs does for QMP). Milliseconds since spawn.
 */
export async function apiReadyMs(dir: string, name: string, timeoutMs = 60_000): Promise<number> {
  const { root, compiled } = projectLayout();
  const sock = join(dir, `${name}.sock`);
  const l = launch([process.execPath, join(root, 'bin', 'vmm.js'), 'serve', '--api-socket', sock], {
    env: { ...process.env, VMM_DIST: relative(root, compiled) || 'dist' },
    timeoutMs,
  });
  try {
    const deadline = performance.now() + timeoutMs;
    while (performance.now() < deadline) {
      if (l.child.exitCode !== null) throw new Error(`vmm serve exited: ${l.stderr.trim().slice(0, 200)}`);
      const ok = await apiRequest(sock, 'GET', 'vmm.ping', undefined, 5000).then(
        (a) => a.status === 200,
        () => false,
      );
      if (ok) return performance.now() - l.spawnAt;
      await new Promise((r) => setTimeout(r, 2));
    }
    throw new Error('vmm.ping did not answer in time');
  } finally {
    await l.kill(1000);
  }
}
