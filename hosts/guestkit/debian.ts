import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { GuestKitError } from './errors.js';

/** Debian package fetching for the kit: `apt-cache` to resolve versions, `apt-get download`, `dpkg-deb -x`. */

const APT_ARCHIVES = '/var/cache/apt/archives';

function run(
  cmd: string,
  args: string[],
  opts: { cwd?: string; timeoutMs?: number } = {},
): { ok: boolean; out: string; err: string } {
  const r = spawnSync(cmd, args, {
    cwd: opts.cwd,
    timeout: opts.timeoutMs ?? 300_000,
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  if (r.error)
    return { ok: false, out: '', err: `${cmd}: ${(r.error as NodeJS.ErrnoException).code ?? r.error.message}` };
  return { ok: r.status === 0, out: r.stdout, err: r.stderr };
}

/** The advice appended to every package-fetch failure: the kit needs a Debian/Ubuntu host, or the user's own files. */
export const NOT_DEBIAN_HELP =
  'The guest kit builds from Debian packages (apt-get, dpkg-deb) and needs a Debian/Ubuntu host ' +
  '(root for `apt-get update`). Elsewhere, point it at your own files: set TSVMM_KERNEL=<bzImage> and ' +
  'TSVMM_INITRAMFS=<initramfs.cpio.gz> (optionally TSVMM_VMLINUX=<ELF vmlinux>), or pass ' +
  '`--kernel <bzImage> --initramfs <file>` to `node dist/hosts/guestkit/cli.js setup`.';

/** True when apt-cache and dpkg-deb run on this host (the kit can fetch Debian packages). */
export function aptAvailable(): boolean {
  return run('apt-cache', ['--version']).ok && run('dpkg-deb', ['--version']).ok;
}

let updated = false;
function aptUpdate(): void {
  if (updated) return;
  updated = true;
  const r = run('apt-get', ['update'], { timeoutMs: 600_000 });
  if (!r.ok)
    throw new GuestKitError(
      'PackageFetch',
      `apt-get update failed: ${r.err.trim().split('\n').pop()}. ${NOT_DEBIAN_HELP}`,
      {},
    );
}

/** The candidate version of a package, running `apt-get update` once if apt knows nothing about it. */
export function candidateVersion(pkg: string): string {
  for (let attempt = 0; attempt < 2; attempt++) {
    const r = run('apt-cache', ['show', '--no-all-versions', pkg]);
    const m = r.ok ? /^Version:\s*(\S+)/m.exec(r.out) : null;
    if (m) return m[1];
    if (attempt === 0) aptUpdate();
  }
  throw new GuestKitError('PackageFetch', `apt does not know package ${pkg}. ${NOT_DEBIAN_HELP}`, { pkg });
}

/** The concrete kernel image package a metapackage (linux-image-cloud-amd64) points at. */
export function resolveKernelPackage(meta: string): string {
  if (!meta.startsWith('linux-image-'))
    throw new GuestKitError('PackageFetch', `not a kernel package name: ${meta}`, { meta });
  candidateVersion(meta);
  const r = run('apt-cache', ['depends', meta]);
  const m = /Depends:\s*(linux-image-\d\S*)/.exec(r.out);
  // a concrete package (linux-image-6.1.0-56-cloud-amd64) depends on no other image
  return m ? m[1] : meta;
}

/** Finds `pkg_version_arch.deb` in apt's cache or downloads it into `dir`. Returns its path. */
export function fetchDeb(pkg: string, version: string, dir: string): string {
  const fileVersion = version.replace(/:/g, '%3a');
  const wanted = (f: string) => f.startsWith(`${pkg}_${fileVersion}_`) && f.endsWith('.deb');
  if (existsSync(APT_ARCHIVES)) {
    const hit = readdirSync(APT_ARCHIVES).find(wanted);
    if (hit) return join(APT_ARCHIVES, hit);
  }
  mkdirSync(dir, { recursive: true });
  const r = run('apt-get', ['download', `${pkg}=${version}`], { cwd: dir, timeoutMs: 600_000 });
  const got = readdirSync(dir).find(wanted);
  if (!got)
    throw new GuestKitError(
      'PackageFetch',
      `apt-get download ${pkg}=${version} failed: ${r.err.trim().split('\n').slice(-2).join(' ')}. ${NOT_DEBIAN_HELP}`,
      { pkg, version },
    );
  return join(dir, got);
}

/** Unpacks a .deb's files (dpkg-deb -x) into `into`, creating it; throws GuestKitError 'PackageFetch' on failure. */
export function unpackDeb(deb: string, into: string): void {
  mkdirSync(into, { recursive: true });
  const r = run('dpkg-deb', ['-x', deb, into]);
  if (!r.ok) throw new GuestKitError('PackageFetch', `dpkg-deb -x ${deb} failed: ${r.err.trim()}`, { deb });
}
