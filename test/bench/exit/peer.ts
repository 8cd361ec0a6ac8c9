import { spawnSync } from 'node:child_process';
import { tool } from '../tools.js';

/** One run of the C peer (its own process, one round): microseconds per exit. */
export function measurePeer(exits: number): number {
  const bin = tool('kvm-exit-loop');
  const r = spawnSync(bin, [String(exits), '1'], { encoding: 'utf8', timeout: 120_000 });
  const m = /ns_per_exit ([\d.]+)/.exec(r.stdout);
  if (r.status !== 0 || !m)
    throw new Error(`kvm-exit-loop failed (status ${r.status}): ${(r.stderr || r.stdout).trim().slice(0, 200)}`);
  return Number(m[1]) / 1000;
}
