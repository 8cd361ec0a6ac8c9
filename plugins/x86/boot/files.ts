import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { X86BootError } from '../errors.js';
import { markStartup } from '../../../core/vmm/timings.js';
import { checkRegularPath, OPEN_NONBLOCK } from '../../../core/block/regular-file.js';

const KIT_FILES = { vmlinux: 'vmlinux', bzImage: 'bzImage', bzimage: 'bzImage', initramfs: 'initramfs' } as const;
type KitFile = (typeof KIT_FILES)[keyof typeof KIT_FILES];

/**
 * Resolves a boot file named in the config: a path (relative to the YAML file's folder)
 * or `guestkit:vmlinux` / `guestkit:bzImage` / `guestkit:initramfs`, the files of the
 * project's guest kit (hosts/guestkit: cached Debian kernel + busybox initramfs).
 */
export async function resolveBootFile(spec: string, baseDir: string): Promise<string> {
  if (!spec.startsWith('guestkit:')) {
    const path = isAbsolute(spec) ? spec : resolve(baseDir, spec);
    try {
      checkRegularPath(path, 'boot file'); // missing: bad input before start; a FIFO or device would block the read
    } catch (err) {
      throw new X86BootError('Io', (err as Error).message, { path }, { cause: err });
    }
    return path;
  }
  const name = spec.slice('guestkit:'.length) as keyof typeof KIT_FILES;
  const file: KitFile | undefined = KIT_FILES[name];
  if (!file)
    throw new X86BootError(
      'Io',
      `unknown guest kit file '${spec}'; use guestkit:vmlinux, guestkit:bzImage or guestkit:initramfs`,
      { spec },
    );
  let kit: Record<KitFile, string>;
  try {
    const mod = (await import('../../../hosts/guestkit/index.js')) as { guestKit(): Promise<Record<KitFile, string>> };
    kit = await mod.guestKit();
  } catch (err) {
    throw new X86BootError(
      'Io',
      `cannot get the guest kit for '${spec}': ${(err as Error)?.message ?? String(err)}`,
      { spec },
      { cause: err },
    );
  }
  return kit[file];
}

/** Boot files larger than this are refused (no guest RAM layout fits them; a hostile config could name /dev/zero). */
export const MAX_BOOT_FILE_BYTES = 1 << 30;

/**
 * Reads a whole boot file, with an X86BootError naming the file on failure. One fstat and
 * large read()s straight into one buffer: fs.promises.readFile reads a 50 MB vmlinux in
 * 512 KiB pieces, each a trip through the thread pool, which costs seconds in the nested sandbox.
 */
export async function readBootFile(path: string, what: string): Promise<Uint8Array> {
  let fd: number | undefined;
  try {
    fd = openSync(path, constants.O_RDONLY | OPEN_NONBLOCK); // owned here, closed below; never blocks on a FIFO
    const st = fstatSync(fd);
    if (!st.isFile()) throw new Error('not a regular file');
    if (st.size > MAX_BOOT_FILE_BYTES)
      throw new Error(`${st.size} bytes is more than the ${MAX_BOOT_FILE_BYTES} a boot file may have`);
    const out = new Uint8Array(st.size);
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
