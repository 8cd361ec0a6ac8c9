import { realpathSync, statSync } from 'node:fs';
import { basename, dirname, posix, resolve } from 'node:path';
import { SandboxError } from './errors.js';
import { startVirtiofsd, type VirtiofsShare } from './virtiofs.js';

/** A host file the sandbox shares instead of copying: L1 reads and writes the host's file itself. */
export interface SharedFile {
  path: string;
  readOnly: boolean;
}

/** Where L1 mounts the shared folders before binding their files into the command's root. */
export const SHARES_MOUNT = '/tsvmm-shares';

/** One shared host folder and the files of it that appear in L1 (at `dest`, the path the user named). */
export interface ShareFolder {
  dir: string;
  files: { name: string; dest: string; readOnly: boolean }[];
}

/** Quotes a word for sh. */
export const shq = (v: string): string => `'${v.replace(/'/g, `'\\''`)}'`;

/**
 * Groups the files by the host folder that really holds them (symlinks followed), one share per
 * folder. Only regular files: a block device cannot go through virtio-fs. A file named twice with
 * different modes is shared writable.
 */
export function planShares(files: readonly SharedFile[]): ShareFolder[] {
  const byDir = new Map<string, ShareFolder>();
  for (const f of files) {
    const dest = resolve(f.path);
    let real: string;
    try {
      real = realpathSync(dest);
      if (!statSync(real).isFile())
        throw new Error('not a regular file (disks reach the sandbox over virtio-fs, which carries files only)');
    } catch (e) {
      throw new SandboxError('Share', `cannot share ${dest} into the sandbox: ${(e as Error).message}`, { path: dest });
    }
    const dir = dirname(real);
    const folder = byDir.get(dir) ?? { dir, files: [] };
    byDir.set(dir, folder);
    const same = folder.files.find((x) => x.dest === dest);
    if (same) same.readOnly &&= f.readOnly;
    else folder.files.push({ name: basename(real), dest, readOnly: f.readOnly });
  }
  return [...byDir.values()];
}

/**
 * The L1 shell lines that mount each shared folder (tag `tsvmm-share-<i>`) and bind its files at
 * their host paths under `newroot` (read-only ones remounted read-only). Needs `fail` defined.
 */
export function shareMountScript(folders: readonly ShareFolder[], newroot: string): string {
  if (folders.length === 0) return '';
  const lines = [
    'bind_file() {',
    '  mkdir -p "$(dirname "$2")" || fail "cannot make the folder of $2"',
    '  [ -e "$2" ] || : > "$2" || fail "cannot make a mount point for $2"',
    '  mount --bind "$1" "$2" || fail "cannot bind the shared file $2"',
    '  [ "$3" = rw ] || mount -o remount,bind,ro "$2" || fail "cannot make $2 read-only"',
    '}',
  ];
  folders.forEach((f, i) => {
    const at = `${SHARES_MOUNT}/${i}`;
    lines.push(
      `mkdir -p ${at} && mount -t virtiofs tsvmm-share-${i} ${at} || fail ${shq(`cannot mount the shared folder ${f.dir} (virtiofs)`)}`,
    );
    for (const x of f.files)
      lines.push(`bind_file ${shq(`${at}/${x.name}`)} ${shq(posix.join(newroot, x.dest))} ${x.readOnly ? 'ro' : 'rw'}`);
  });
  return lines.join('\n') + '\n';
}

/** Starts one virtiofsd per folder (socket in `socketDir`); on any failure stops those started and rethrows. */
export async function startShares(folders: readonly ShareFolder[], socketDir: string): Promise<VirtiofsShare[]> {
  const started: VirtiofsShare[] = [];
  try {
    for (const [i, f] of folders.entries()) started.push(await startVirtiofsd(f.dir, socketDir, i));
  } catch (e) {
    for (const s of started) s.stop();
    throw e;
  }
  return started;
}
