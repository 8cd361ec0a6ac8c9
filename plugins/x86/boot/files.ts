import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { X86BootError } from '../errors.js';
import { markStartup } from '../../../core/vmm/timings.js';
import { checkRegularPath, OPEN_NONBLOCK } from '../../../core/block/regular-file.js';
import type { HostFiles } from '../../../core/host/host-files.js';
import {
  MAP_ANONYMOUS,
  MAP_NORESERVE,
  MAP_PRIVATE,
  PROT_READ,
  PROT_WRITE,
  c,
  check,
  viewOf,
} from '../../../core/native/libc.js';

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
 * Reads the kernel (and the initramfs) into anonymous mappings of their own, lends them to `use`, and unmaps them
 * as soon as it returns or throws. A Uint8Array of a 50 MB vmlinux would stay resident in the VMM for its whole life
 * (until V8 happens to run a full collection, which a VMM's small JS heap rarely needs): measured, 52 MB of a micro
 * VM's 128 MB above guest RAM. The views are invalid once `use` returns, so `use` must copy what it keeps
 * (loadLinux copies into guest memory and returns only addresses).
 */
export function withBootFiles<T>(
  files: { kernel: string; initramfs?: string },
  use: (kernel: Uint8Array, initramfs: Uint8Array | undefined) => T,
): T {
  const held: LentBytes[] = [];
  try {
    const kernel = readWhole(files.kernel, 'kernel', (n) => lend(n, held));
    const initramfs = files.initramfs ? readWhole(files.initramfs, 'initramfs', (n) => lend(n, held)) : undefined;
    return use(kernel, initramfs);
  } finally {
    for (const h of held) h.release();
  }
}

interface LentBytes {
  release(): void;
}

/** `n` bytes of fresh anonymous memory, recorded in `held` for the caller to release. */
function lend(n: number, held: LentBytes[]): Uint8Array {
  if (n === 0) return new Uint8Array(0); // mmap refuses a zero length
  // SAFETY: a fresh private mapping owned by `held`; its view is used only until withBootFiles unmaps it.
  const addr = BigInt(
    check('mmap', c.mmap(0n, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0n)),
  );
  let live = true;
  held.push({
    release: () => {
      if (live) c.munmap(addr, n);
      live = false;
    },
  });
  return viewOf(addr, n);
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
