/**
 * Worker thread of verifyMemoryInWorker: hashes the extents of a snapshot's memory file (sha256 over each
 * extent's bytes, in order) and posts the hex digest, or `{ error }` naming a short read.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { hashExtents } from './memory-hash.js';

const { path, extents } = workerData as { path: string; extents: [number, number][] };
try {
  parentPort!.postMessage({ sha256: hashExtents(path, extents) });
} catch (err) {
  parentPort!.postMessage({ error: (err as Error)?.message ?? String(err) });
}
