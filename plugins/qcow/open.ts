import { realpath } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import type { DiskOpenOptions } from '../../core/block/disk.js';
import { checkImage } from './check.js';
import { QcowError, fail } from './errors.js';
import { INCOMPAT_CORRUPT, INCOMPAT_DIRTY, MAX_CLUSTER_BITS, QCOW_MAGIC, parseHeader } from './header.js';
import { HostFile } from './host-file.js';
import { Qcow2Image } from './image.js';
import { RawBacking, type BackingReader } from './raw-backing.js';

/** Backing chains deeper than this are refused (crosvm / Cloud Hypervisor use 10 too). */
export const MAX_BACKING_DEPTH = 10;

/** How openQcow2 opens an image: the DiskOpenOptions, plus what the image tools need (check, info, convert -U). */
export interface QcowOpenOptions extends DiskOpenOptions {
  /** Check-only opens may read images marked corrupt or dirty without repairing them. */
  forCheck?: boolean;
  /** Read-only inspection (info): do not open the backing file even if one is named. */
  skipBacking?: boolean;
  /** Read-only opens only: share the image with writers (qemu-img -U); nothing is locked against them. */
  forceShare?: boolean;
  /** Opens the image file in place of the host file system (a double over memory, for fuzzing); no backing. */
  openFile?: (path: string, readOnly: boolean) => Promise<HostFile>;
}

interface Chain {
  depth: number;
  seen: Set<string>;
}

/** True when the bytes start like a qcow2 image. */
export function probeQcow2(header: Uint8Array): boolean {
  return header.length >= 4 && new DataView(header.buffer, header.byteOffset, 4).getUint32(0) === QCOW_MAGIC;
}

/**
 * Opens a qcow2 image: validates the header, follows the backing chain when allowed,
 * repairs refcounts of a dirty image opened read-write, disowns autoclear extensions.
 */
export async function openQcow2(
  opts: QcowOpenOptions,
  chain: Chain = { depth: 0, seen: new Set() },
): Promise<Qcow2Image> {
  if (opts.openFile && opts.allowBacking) fail('Range', `openFile and allowBacking do not go together (${opts.path})`);
  let real: string;
  try {
    real = opts.openFile ? opts.path : await realpath(opts.path);
  } catch (e) {
    throw new QcowError('Io', `cannot open ${opts.path}: ${(e as Error).message}`, { path: opts.path }, { cause: e });
  }
  if (chain.seen.has(real)) fail('Backing', `backing chain loops back to ${real}`, { path: real });
  if (opts.forceShare && !opts.readOnly) fail('Range', `--force-share is for read-only opens (${opts.path})`);
  const file = opts.openFile
    ? await opts.openFile(real, opts.readOnly)
    : await HostFile.open(real, opts.readOnly, opts.forceShare ? 'force-share' : undefined);
  let backing: BackingReader | undefined;
  try {
    const first = new Uint8Array(Math.min(file.size, 2 ** MAX_CLUSTER_BITS));
    await file.read(first, 0);
    const h = parseHeader(first, file.size);
    if (!opts.readOnly && !opts.forCheck) {
      if (h.incompatible & INCOMPAT_CORRUPT)
        fail('CorruptImage', `${opts.path} is marked corrupt; it can only be opened read-only (run 'vmm image check')`);
      if (h.nbSnapshots > 0) fail('Unsupported', `${opts.path} has internal snapshots; open it read-only`);
    }
    if (h.backingFile !== undefined && !(opts.skipBacking && opts.readOnly)) {
      if (!opts.allowBacking) {
        fail(
          'Backing',
          `${opts.path} names a backing file (${JSON.stringify(h.backingFile)}) but backing files are not allowed here; enable allowBacking only for images you trust`,
          { backingFile: h.backingFile },
        );
      }
      if (chain.depth + 1 > MAX_BACKING_DEPTH)
        fail('Backing', `backing chain deeper than ${MAX_BACKING_DEPTH}`, { path: real });
      const path = isAbsolute(h.backingFile) ? h.backingFile : resolve(dirname(real), h.backingFile);
      backing = await openBacking(
        path,
        h.backingFormat,
        { depth: chain.depth + 1, seen: new Set([...chain.seen, real]) },
        opts.forceShare,
      );
    }
    const img = await Qcow2Image.load(file, h, backing, opts.readOnly);
    if (!opts.readOnly && !opts.forCheck) {
      if (h.incompatible & INCOMPAT_DIRTY) {
        // Lazy refcounts left refcounts behind; bring them up to date before any allocation.
        const report = await checkImage(img, { repair: 'all' });
        if (report.corruptions - report.corruptionsFixed > 0 || report.repairRefused) {
          const why = report.repairRefused ?? report.messages.find((m) => m.startsWith('ERROR')) ?? '';
          fail(
            'CorruptImage',
            `${opts.path} is dirty and its refcounts could not be repaired: ${why} (run 'vmm image check')`,
            { report },
          );
        }
        await img.clearDirty();
      }
      await img.clearAutoclear();
    }
    return img;
  } catch (e) {
    await backing?.close().catch(() => undefined);
    await file.close().catch(() => undefined);
    if (e instanceof QcowError) throw e;
    throw new QcowError('Io', `cannot open ${opts.path}: ${(e as Error).message}`, { path: opts.path }, { cause: e });
  }
}

/**
 * The virtual size of the qcow2 image at `path`, from its header alone, read without taking the image's lock
 * (another process may be writing it: a live migration's source). The header's size field does not change under a
 * writer (no resize while it runs); tables are not read.
 */
export async function qcow2VirtualSize(path: string): Promise<bigint> {
  const file = await HostFile.open(path, true, 'force-share');
  try {
    const first = new Uint8Array(Math.min(file.size, 2 ** MAX_CLUSTER_BITS));
    await file.read(first, 0);
    return BigInt(parseHeader(first, file.size).size);
  } catch (e) {
    if (e instanceof QcowError) throw e;
    throw new QcowError('Io', `cannot read ${path}: ${(e as Error).message}`, { path }, { cause: e });
  } finally {
    await file.close().catch(() => undefined);
  }
}

async function openBacking(
  path: string,
  format: string | undefined,
  chain: Chain,
  forceShare?: boolean,
): Promise<BackingReader> {
  let fmt = format;
  if (fmt === undefined) {
    const probe = await HostFile.open(path, true, 'none');
    try {
      const b = new Uint8Array(4);
      await probe.read(b, 0);
      fmt = probeQcow2(b) ? 'qcow2' : 'raw';
    } finally {
      await probe.close();
    }
  }
  if (fmt === 'qcow2') return openQcow2({ path, readOnly: true, allowBacking: true, forceShare }, chain);
  if (fmt === 'raw') {
    let real: string;
    try {
      real = await realpath(path);
    } catch (e) {
      throw new QcowError(
        'Backing',
        `backing file ${path} cannot be opened: ${(e as Error).message}`,
        { path },
        { cause: e },
      );
    }
    if (chain.seen.has(real)) fail('Backing', `backing chain loops back to ${real}`);
    return new RawBacking(await HostFile.open(real, true, forceShare ? 'force-share' : 'read-only'));
  }
  return fail('Backing', `backing format ${JSON.stringify(fmt)} is not supported (qcow2 or raw)`, { format: fmt });
}
