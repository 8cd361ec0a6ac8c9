import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { X86BootError } from '../errors.js';
import { markStartup } from '../../../core/vmm/timings.js';
import { checkRegularPath, OPEN_NONBLOCK } from '../../../core/block/regular-file.js';
import type { HostFiles } from '../../../core/host/host-files.js';
import { fileBootImage, type BootImage } from './image.js';

/**
 * Resolves a boot file named in the config: a file a host serves by scheme (`guestkit:vmlinux`: the
 * host registers the scheme, see core/host/host-files.ts; this plugin never imports hosts/) or a path,
 * relative to the YAML file's folder.
 */
export async function resolveBootFile(spec: string, baseDir: string, hostFiles?: HostFiles): Promise<string> {
  let hosted: string | undefined;
  try {
    hosted = await hostFiles?.resolve(spec);
  } catch (err) {
    throw new X86BootError('Io', (err as Error).message, { spec }, { cause: err });
  }
  if (hosted !== undefined) return hosted;
  const path = isAbsolute(spec) ? spec : resolve(baseDir, spec);
  try {
    checkRegularPath(path, 'boot file'); // missing: bad input before start; a FIFO or device would block the read
  } catch (err) {
    throw new X86BootError('Io', (err as Error).message, { path }, { cause: err });
  }
  return path;
}

/** Boot files larger than this are refused (no guest RAM layout fits them; a hostile config could name /dev/zero). */
export const MAX_BOOT_FILE_BYTES = 1 << 30;

/**
 * Reads a whole boot file, with an X86BootError naming the file on failure. One fstat and
 * large read()s straight into one buffer: fs.promises.readFile reads a 50 MB vmlinux in
 * 512 KiB pieces, each a trip through the thread pool, which costs seconds in the nested sandbox.
 */
export async function readBootFile(path: string, what: string): Promise<Uint8Array> {
  return Promise.resolve(readWhole(path, what, (n) => new Uint8Array(n)));
}

/**
 * Opens the kernel (and the initramfs) and lends `use` a BootImage of each: the loaders read the headers in small
 * pieces and pread the loadable bytes straight into guest memory, so a 50 MB vmlinux is never held in the VMM (it
 * was: 52 MB of a micro VM's 128 MB above guest RAM) and is copied once, not twice. The files are closed as soon as
 * `use` returns or throws; the images are invalid after that.
 */
export function withBootFiles<T>(
  files: { kernel: string; initramfs?: string },
  use: (kernel: BootImage, initramfs: BootImage | undefined) => T,
): T {
  const fds: number[] = [];
  try {
    const kernel = openImage(files.kernel, 'kernel', fds);
    const initramfs = files.initramfs ? openImage(files.initramfs, 'initramfs', fds) : undefined;
    return use(kernel, initramfs);
  } finally {
    for (const fd of fds) closeSync(fd);
  }
}

/** Opens one boot file (never blocking on a FIFO), checks it, and records its fd in `fds` for the caller to close. */
function openImage(path: string, what: string, fds: number[]): BootImage {
  try {
    const fd = openSync(path, constants.O_RDONLY | OPEN_NONBLOCK);
    fds.push(fd);
    const st = fstatSync(fd);
    if (!st.isFile()) throw new Error('not a regular file');
    if (st.size > MAX_BOOT_FILE_BYTES)
      throw new Error(`${st.size} bytes is more than the ${MAX_BOOT_FILE_BYTES} a boot file may have`);
    markStartup(`${what} opened (${st.size} bytes)`);
    return fileBootImage(fd, st.size, what, path);
  } catch (err) {
    throw new X86BootError(
      'Io',
      `cannot read the ${what} ${path}: ${(err as Error)?.message ?? String(err)}`,
      { path },
      { cause: err },
    );
  }
}

function readWhole(path: string, what: string, alloc: (size: number) => Uint8Array): Uint8Array {
  let fd: number | undefined;
  try {
    fd = openSync(path, constants.O_RDONLY | OPEN_NONBLOCK); // owned here, closed below; never blocks on a FIFO
    const st = fstatSync(fd);
    if (!st.isFile()) throw new Error('not a regular file');
    if (st.size > MAX_BOOT_FILE_BYTES)
      throw new Error(`${st.size} bytes is more than the ${MAX_BOOT_FILE_BYTES} a boot file may have`);
    const out = alloc(st.size);
    let off = 0;
    while (off < out.length) {
      const n = readSync(fd, out, off, Math.min(out.length - off, 1 << 30), off);
      if (n === 0) break; // the file shrank while we read it
      off += n;
    }
    markStartup(`${what} read (${off} bytes)`);
    return off === out.length ? out : out.subarray(0, off);
  } catch (err) {
    throw new X86BootError(
      'Io',
      `cannot read the ${what} ${path}: ${(err as Error)?.message ?? String(err)}`,
      { path },
      { cause: err },
    );
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
