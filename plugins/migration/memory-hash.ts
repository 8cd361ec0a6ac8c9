import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { Worker } from 'node:worker_threads';
import { MigrationError } from './errors.js';
import type { MemoryImage } from './format.js';

/** How many bytes one read of the memory file takes when hashing it. */
const HASH_CHUNK = 1 << 20;

/** sha256 (hex) over the bytes of `extents` ([offset, length], in order) of the file at `path`. */
export function hashExtents(path: string, extents: readonly (readonly [number, number])[]): string {
  const fd = fs.openSync(path, 'r');
  try {
    const h = createHash('sha256');
    const buf = Buffer.allocUnsafe(HASH_CHUNK);
    for (const [off, len] of extents) {
      for (let done = 0; done < len;) {
        const n = fs.readSync(fd, buf, 0, Math.min(HASH_CHUNK, len - done), off + done);
        if (n <= 0) throw new Error(`short read at ${off + done}`);
        h.update(buf.subarray(0, n));
        done += n;
      }
    }
    return h.digest('hex');
  } finally {
    fs.closeSync(fd);
  }
}

const WORKER_URL = new URL('./memory-hash-worker.js', import.meta.url);

/**
 * Hashes the memory file's extents in a worker thread (the VM is assembled meanwhile) and resolves once they
 * match the manifest; rejects with the same MigrationError 'Format' the synchronous check gives. The caller must
 * wait for it before the saved state loads or the guest runs.
 */
export function verifyMemoryInWorker(image: Pick<MemoryImage, 'extents' | 'sha256'>, path: string): Promise<void> {
  const bad = (why: string): MigrationError => new MigrationError('Format', `snapshot memory ${path}: ${why}`);
  return new Promise<void>((resolve, reject) => {
    const w = new Worker(WORKER_URL, { workerData: { path, extents: image.extents } });
    let answer: { sha256?: string; error?: string } | undefined;
    w.once('message', (m: { sha256?: string; error?: string }) => (answer = m));
    w.once('error', (err) => reject(bad(`hashing failed: ${err.message}`)));
    // settled once the thread ended (nothing of it runs on, e.g. when a system call filter comes next)
    w.once('exit', () => {
      if (answer?.error !== undefined) reject(bad(answer.error));
      else if (answer?.sha256 === undefined) reject(bad('the hashing thread ended without an answer'));
      else if (answer.sha256 !== image.sha256) reject(bad('checksum mismatch (the file was changed or damaged)'));
      else resolve();
    });
  });
}
