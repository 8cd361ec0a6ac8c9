import { existsSync } from 'node:fs';
import { pairedRatios, summarize } from '../stats.js';
import type { Row, Where } from '../types.js';
import { measureOurs, type ExitPath } from './ours.js';
import { measurePeer } from './peer.js';

/** A measurement that does not finish in time becomes an n/a row instead of a stuck run. */
function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, rej) => {
    t = setTimeout(() => rej(new Error(`${what} did not finish ${Math.round(ms / 1000)} s`)), ms);
  });
  return Promise.race([p, limit]).finally(() => clearTimeout(t));
}

const LABEL: Record<ExitPath, string> = {
  inline: 'PIO exit round trip, inline runner (koffi sync KVM_RUN on the main thread)',
  worker: 'PIO exit round trip, WorkerVcpuRunner (worker -> main thread -> worker)',
  'worker-fast': 'PIO exit round trip, WorkerVcpuRunner fast path (port unclaimed: completed in the worker, no hop)',
  'koffi-raw': 'PIO exit round trip, KvmVcpu.runRaw() loop only (no decode, no Bus): the floor under the inline path',
};

/**
 * Exit round trip: ours (inline and worker paths) against the C KVM_RUN loop, interleaved
 * repeat by repeat (C, inline, worker, C, ...) so load changes hit every side alike.
 */
export async function exitBench(o: {
  repeats: number;
  exits: number;
  where: Where;
  log: (s: string) => void;
}): Promise<Row[]> {
  const paths: ExitPath[] = ['inline', 'worker', 'worker-fast', 'koffi-raw'];
  const rows = paths.map((p): Row => ({
    id: `exit.${p}`,
    bench: 'exit',
    label: LABEL[p],
    unit: 'µs/exit',
    better: 'lower',
    where: o.where,
    peer: 'C KVM_RUN loop (gcc -O2, same guest)',
    target: p === 'inline' ? { op: '<=', value: 1.05 } : undefined,
    notes: `${o.exits} exits per repeat; guest: 64-bit CPL3, IOPL=3, out dx,al; jmp`,
  }));
  if (!existsSync('/dev/kvm')) return rows.map((r) => ({ ...r, na: 'n/a: no /dev/kvm on this machine' }));
  const peer: number[] = [];
  const ours: Record<ExitPath, number[]> = { inline: [], worker: [], 'worker-fast': [], 'koffi-raw': [] };
  const peerPerPath: Record<ExitPath, number[]> = { inline: [], worker: [], 'worker-fast': [], 'koffi-raw': [] };
  try {
    for (let i = 0; i < o.repeats; i++) {
      // Each of our paths is paired with a peer run right before it.
      for (const p of paths) {
        const c = measurePeer(o.exits);
        peer.push(c);
        peerPerPath[p].push(c);
        ours[p].push(await withTimeout(measureOurs(p, o.exits), 120_000 + o.exits * 50, `our ${p} path`));
      }
      o.log(
        `exit ${o.where} repeat ${i + 1}/${o.repeats}: C ${peer.at(-1)!.toFixed(2)} µs, inline ${ours.inline.at(-1)!.toFixed(2)} µs, worker ${ours.worker.at(-1)!.toFixed(2)} µs, worker-fast ${ours['worker-fast'].at(-1)!.toFixed(2)} µs, raw ${ours['koffi-raw'].at(-1)!.toFixed(2)} µs`,
      );
    }
  } catch (err) {
    return rows.map((r) => ({ ...r, na: `n/a: ${(err as Error).message}` }));
  }
  return rows.map((r, k) => {
    const p = paths[k];
    return {
      ...r,
      ours: summarize(ours[p]),
      peerSummary: summarize(peerPerPath[p]),
      ratio: summarize(pairedRatios(ours[p], peerPerPath[p])),
    };
  });
}
