import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { VmmError } from '../errors.js';
import { markStartup } from '../vmm/timings.js';
import { checkRegularPath, OPEN_NONBLOCK } from '../block/regular-file.js';
import type { HostFiles } from './host-files.js';

/** Why a boot file (kernel, initramfs) named in a config cannot be used; its message names the file. */
export class BootFileError extends VmmError<'Io'> {}

/** Boot files larger than this are refused (no guest RAM layout fits them; a hostile config could name /dev/zero). */
export const MAX_BOOT_FILE_BYTES = 1 << 30;

/**
 * Resolves a boot file named in the config: a file a host serves by scheme (`guestkit:vmlinux`: the host registers
 * the scheme, see host-files.ts; plugins never import hosts/) or a path, relative to the YAML file's folder. Every
 * architecture's machine plugin uses it.
 */
export async function resolveBootFile(spec: string, baseDir: string, hostFiles?: HostFiles): Promise<string> {
  let hosted: string | undefined;
  try {
    hosted = await hostFiles?.resolve(spec);
  } catch (err) {
    throw new BootFileError('Io', (err as Error).message, { spec }, { cause: err });
  }
  if (hosted !== undefined) return hosted;
  const path = isAbsolute(spec) ? spec : resolve(baseDir, spec);
  try {
    checkRegularPath(path, 'boot file'); // missing: bad input before start; a FIFO or device would block the read
  } catch (err) {
    throw new BootFileError('Io', (err as Error).message, { path }, { cause: err });
  }
  return path;
}

/**
 * Opens a boot file for reading (never blocking on a FIFO that replaced it since the config was checked), checks
 * that it is a regular file of at most MAX_BOOT_FILE_BYTES, and returns its fd (the caller closes it) and size.
 */
export function openBootFile(path: string, what: string): { fd: number; size: number } {
  let fd: number | undefined;
  try {
    fd = openSync(path, constants.O_RDONLY | OPEN_NONBLOCK);
    const st = fstatSync(fd);
    if (!st.isFile()) throw new Error('not a regular file');
    if (st.size > MAX_BOOT_FILE_BYTES)
      throw new Error(`${st.size} bytes is more than the ${MAX_BOOT_FILE_BYTES} a boot file may have`);
    return { fd, size: st.size };
  } catch (err) {
    if (fd !== undefined) closeSync(fd);
    throw readError(path, what, err);
  }
}

/**
 * Reads a whole boot file, with a BootFileError naming the file on failure: one fstat and large read()s straight
 * into one buffer (fs.promises.readFile reads a 50 MB file in 512 KiB pieces, each a trip through the thread pool,
 * which costs seconds in the nested sandbox). x86 does not use it: its loader reads from the open file.
 */
export async function readBootFile(path: string, what: string): Promise<Uint8Array> {
  const { fd, size } = openBootFile(path, what);
  try {
    const out = new Uint8Array(size);
    let off = 0;
    while (off < out.length) {
      const n = readSync(fd, out, off, Math.min(out.length - off, 1 << 30), off);
      if (n === 0) break; // the file shrank while we read it
      off += n;
    }
    markStartup(`${what} read (${off} bytes)`);
    return Promise.resolve(off === out.length ? out : out.subarray(0, off));
  } catch (err) {
    throw readError(path, what, err);
  } finally {
    closeSync(fd);
  }
}

function readError(path: string, what: string, err: unknown): BootFileError {
  if (err instanceof BootFileError) return err;
  const why = (err as Error)?.message ?? String(err);
  return new BootFileError('Io', `cannot read the ${what} ${path}: ${why}`, { path }, { cause: err });
}
