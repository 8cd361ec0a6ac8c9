import * as fs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { describeIssues } from '../../core/state/persist.js';
import { MigrationError } from './errors.js';
import {
  ManifestBodySchema,
  sha256,
  SNAPSHOT_FILES,
  SNAPSHOT_FORMAT,
  SNAPSHOT_FORMAT_VERSION,
  SNAPSHOT_LIMITS,
  type ManifestBody,
} from './format.js';
import { checkMemoryImage } from './memory-image.js';
import { verifyMemoryInWorker } from './memory-hash.js';

/** A snapshot directory whose manifest, state and memory file passed every check; nothing is loaded yet. */
export interface OpenedSnapshot {
  dir: string;
  body: ManifestBody;
  /** The saved states, parsed but untrusted: restoreVmState validates each against its object. */
  states: unknown;
  memoryPath: string;
  /** With `verifyInBackground`: settles once the memory file's hash was checked (rejects as openSnapshot would). */
  memoryVerified?: Promise<void>;
}

/** How openSnapshot checks: whether it hashes the memory file (default true; size checks always run), and where. */
export interface OpenSnapshotOptions {
  verifyMemory?: boolean;
  /**
   * Hash the memory file in a worker thread instead of before openSnapshot returns: `memoryVerified` settles when
   * done, and the caller must wait for it before the state loads (runRestored does), so a corrupt file is still
   * refused before the guest runs, while the VM is assembled meanwhile.
   */
  verifyInBackground?: boolean;
}

const bad = (dir: string, why: string, kind: 'Format' | 'Version' = 'Format'): never => {
  throw new MigrationError(kind, `snapshot ${dir}: ${why}`, { dir });
};

/** Reads a file of at most `max` bytes, or fails with a Format error naming it. */
function readBounded(dir: string, name: string, max: number): Buffer {
  const file = path.join(dir, name);
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (err) {
    return bad(dir, `cannot read ${name}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (!st.isFile()) bad(dir, `${name} is not a regular file`);
  if (st.size > max) bad(dir, `${name} holds ${st.size} bytes, more than the ${max} a snapshot may have`);
  return fs.readFileSync(file);
}

/** JSON.parse with a Format error naming the file. */
function parseJson(dir: string, name: string, text: Buffer): unknown {
  try {
    return JSON.parse(text.toString('utf8')) as unknown;
  } catch (err) {
    return bad(dir, `${name} is not JSON (truncated or damaged?): ${(err as Error).message}`);
  }
}

/** Checks the manifest's envelope (its checksum, format and version) and returns its validated body. */
export function readManifest(dir: string, text: Buffer): ManifestBody {
  const outer = z
    .strictObject({ sha256: z.string(), body: z.record(z.string(), z.unknown()) })
    .safeParse(parseJson(dir, SNAPSHOT_FILES.manifest, text));
  if (!outer.success) return bad(dir, `${SNAPSHOT_FILES.manifest} is not a snapshot manifest`);
  const raw = outer.data.body;
  if (sha256(JSON.stringify(raw)) !== outer.data.sha256)
    bad(dir, `${SNAPSHOT_FILES.manifest}: checksum mismatch (the file was changed or damaged)`);
  if (raw.format !== SNAPSHOT_FORMAT) bad(dir, `not a tsvmm snapshot (format ${JSON.stringify(raw.format)})`);
  const v = raw.version;
  if (typeof v !== 'number' || v !== SNAPSHOT_FORMAT_VERSION)
    bad(
      dir,
      typeof v === 'number' && v > SNAPSHOT_FORMAT_VERSION
        ? `format version ${v} is newer than this build reads (${SNAPSHOT_FORMAT_VERSION})`
        : `format version ${JSON.stringify(v)} is not one this build reads (${SNAPSHOT_FORMAT_VERSION})`,
      'Version',
    );
  const body = ManifestBodySchema.safeParse(raw);
  if (!body.success) return bad(dir, `${SNAPSHOT_FILES.manifest}: ${describeIssues(body.error)}`);
  return body.data;
}

/**
 * Opens a snapshot directory and checks everything that can be checked without a VM: the manifest's checksum,
 * format and version and schema; state.json's size and checksum; the memory file's layout, size and (unless
 * `verifyMemory` is false) the checksum of its pages. Throws one MigrationError ('Format', 'Version').
 */
export function openSnapshot(dir: string, opts: OpenSnapshotOptions = {}): OpenedSnapshot {
  const body = readManifest(dir, readBounded(dir, SNAPSHOT_FILES.manifest, SNAPSHOT_LIMITS.manifestBytes));
  const stateText = readBounded(dir, SNAPSHOT_FILES.state, SNAPSHOT_LIMITS.stateBytes);
  if (stateText.length !== body.state.bytes)
    bad(dir, `${SNAPSHOT_FILES.state} holds ${stateText.length} bytes, the manifest says ${body.state.bytes}`);
  if (sha256(stateText) !== body.state.sha256)
    bad(dir, `${SNAPSHOT_FILES.state}: checksum mismatch (the file was changed or damaged)`);
  const states = parseJson(dir, SNAPSHOT_FILES.state, stateText);
  const memoryPath = path.join(dir, SNAPSHOT_FILES.memory);
  const verify = opts.verifyMemory !== false;
  const background = verify && opts.verifyInBackground === true;
  checkMemoryImage(body.memory, memoryPath, verify && !background);
  const memoryVerified = background ? verifyMemoryInWorker(body.memory, memoryPath) : undefined;
  memoryVerified?.catch(() => {}); // handled where it is awaited; a snapshot dropped unawaited must not crash
  return { dir, body, states, memoryPath, memoryVerified };
}
