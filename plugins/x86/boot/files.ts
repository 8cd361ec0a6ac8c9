import { readFile } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { X86BootError } from '../errors.js';

const KIT_FILES = { vmlinux: 'vmlinux', bzImage: 'bzImage', bzimage: 'bzImage', initramfs: 'initramfs' } as const;
type KitFile = (typeof KIT_FILES)[keyof typeof KIT_FILES];

/**
 * Resolves a boot file named in the config: a path (relative to the YAML file's folder)
 * or `guestkit:vmlinux` / `guestkit:bzImage` / `guestkit:initramfs`, the files of the
 * project's guest kit (hosts/guestkit: cached Debian kernel + busybox initramfs).
 */
export async function resolveBootFile(spec: string, baseDir: string): Promise<string> {
  if (!spec.startsWith('guestkit:')) return isAbsolute(spec) ? spec : resolve(baseDir, spec);
  const name = spec.slice('guestkit:'.length) as keyof typeof KIT_FILES;
  const file: KitFile | undefined = KIT_FILES[name];
  if (!file) throw new X86BootError('Io', `unknown guest kit file '${spec}'; use guestkit:vmlinux, guestkit:bzImage or guestkit:initramfs`, { spec });
  let kit: Record<KitFile, string>;
  try {
    const mod = await import('../../../hosts/guestkit/index.js') as { guestKit(): Promise<Record<KitFile, string>> };
    kit = await mod.guestKit();
  } catch (err) {
    throw new X86BootError('Io', `cannot get the guest kit for '${spec}': ${(err as Error)?.message ?? String(err)}`, { spec }, { cause: err });
  }
  return kit[file];
}

/** Reads a whole boot file, with an X86BootError naming the file on failure. */
export async function readBootFile(path: string, what: string): Promise<Uint8Array> {
  try {
    const b = await readFile(path);
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  } catch (err) {
    throw new X86BootError('Io', `cannot read the ${what} ${path}: ${(err as Error)?.message ?? String(err)}`, { path }, { cause: err });
  }
}
