/**
 * The arm64 guest kit (issue 20): Debian's arm64 cloud kernel (its uncompressed `Image`, shipped as
 * /boot/vmlinuz-*) and an initramfs with Debian's arm64 busybox, the guest modules of that kernel and the
 * kit's /init (the same as the x86 kit's). Fetched with `apt-get download <pkg>:arm64`, which needs the
 * arm64 architecture in dpkg (`dpkg --add-architecture arm64 && apt-get update`). The busybox cannot run
 * here, so its applet links come from the host's busybox-static of the same Debian release.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { candidateVersion, resolveKernelPackage, unpackDeb } from './debian.js';
import { GuestKitError } from './errors.js';
import { baseInitramfs, busyboxApplets, defaultCacheDir } from './kit.js';

/** Bump when the arm64 kit's contents change. */
export const ARM64_KIT_VERSION = 1;
/** The kernel package the arm64 kit is built from. */
export const ARM64_KERNEL_PACKAGE = 'linux-image-cloud-arm64:arm64';

/** A ready arm64 kit (absolute paths in its folder). */
export interface Arm64Kit {
  dir: string;
  /** The uncompressed arm64 Image. */
  image: string;
  /** gzip'd newc initramfs: arm64 busybox, the guest modules, the kit's /init. */
  initramfs: string;
  kernelVersion: string;
  modulesDir: string;
  source: string;
}

function readArm64Kit(dir: string): Arm64Kit | undefined {
  const f = join(dir, 'kit.json');
  if (!existsSync(f)) return undefined;
  const m = JSON.parse(readFileSync(f, 'utf8')) as { kernelVersion: string; source: string };
  const kit = {
    dir,
    image: join(dir, 'Image'),
    initramfs: join(dir, 'initramfs.cpio.gz'),
    modulesDir: join(dir, 'modules', m.kernelVersion),
    kernelVersion: m.kernelVersion,
    source: m.source,
  };
  return existsSync(kit.image) && existsSync(kit.initramfs) ? kit : undefined;
}

/** apt-get download `<name>:arm64=<version>` into `dir`; the .deb's path. */
function downloadArm64(name: string, version: string, dir: string): string {
  mkdirSync(dir, { recursive: true });
  const r = spawnSync('apt-get', ['download', `${name}:arm64=${version}`], {
    cwd: dir,
    encoding: 'utf8',
    timeout: 600_000,
  });
  const got = readdirSync(dir).find((f) => f.startsWith(`${name}_`) && f.endsWith('_arm64.deb'));
  if (!got)
    throw new GuestKitError(
      'PackageFetch',
      `apt-get download ${name}:arm64 failed: ${(r.stderr ?? '').trim().split('\n').pop()}. ` +
        'The arm64 kit needs `dpkg --add-architecture arm64 && apt-get update` on this Debian host',
      { name },
    );
  return join(dir, got);
}

/**
 * The arm64 kit: $TSVMM_ARM64_KIT_DIR when set (the arm64 sandbox sets it inside L1), else the cached one
 * for the current package versions, built on first use.
 */
export function arm64GuestKit(opts: { cacheDir?: string; log?: (m: string) => void } = {}): Arm64Kit {
  const env = process.env.TSVMM_ARM64_KIT_DIR;
  if (env) {
    const kit = readArm64Kit(env);
    if (!kit) throw new GuestKitError('Unsupported', `TSVMM_ARM64_KIT_DIR=${env} holds no complete arm64 kit`, {});
    return kit;
  }
  const log = opts.log ?? ((m: string) => process.stderr.write(`guestkit: ${m}\n`));
  const cacheDir = resolve(opts.cacheDir ?? defaultCacheDir());
  const kernelPkg = resolveKernelPackage(ARM64_KERNEL_PACKAGE).replace(/:arm64$/, '');
  const kernelVer = candidateVersion(`${kernelPkg}:arm64`);
  const bbVer = candidateVersion('busybox-static:arm64');
  const key = `arm64_${kernelPkg}_${kernelVer}__busybox_${bbVer}__kit${ARM64_KIT_VERSION}`.replace(
    /[^A-Za-z0-9._+-]/g,
    '_',
  );
  const dir = join(cacheDir, key);
  const cached = readArm64Kit(dir);
  if (cached) return cached;
  log(`building the arm64 guest kit from ${kernelPkg}:arm64=${kernelVer} into ${dir}`);
  const tmp = join(cacheDir, `.build-arm64-${process.pid}`);
  try {
    const out = join(tmp, 'kit');
    mkdirSync(out, { recursive: true });
    unpackDeb(downloadArm64(kernelPkg, kernelVer, join(tmp, 'debs')), join(tmp, 'kpkg'));
    unpackDeb(downloadArm64('busybox-static', bbVer, join(tmp, 'debs')), join(tmp, 'bbpkg'));
    const versions = readdirSync(join(tmp, 'kpkg', 'lib', 'modules'));
    if (versions.length !== 1)
      throw new GuestKitError('PackageFetch', `expected one lib/modules/<version> in ${kernelPkg}`, {});
    const kernelVersion = versions[0]!;
    renameSync(join(tmp, 'kpkg', 'boot', `vmlinuz-${kernelVersion}`), join(out, 'Image'));
    mkdirSync(join(out, 'modules'), { recursive: true });
    const modulesDir = join(out, 'modules', kernelVersion);
    renameSync(join(tmp, 'kpkg', 'lib', 'modules', kernelVersion), modulesDir);
    const applets = busyboxApplets('/bin/busybox');
    if (applets.length === 0)
      throw new GuestKitError(
        'Unsupported',
        'the arm64 kit takes its applet list from /bin/busybox (busybox-static)',
        {},
      );
    const busybox = readFileSync(join(tmp, 'bbpkg', 'bin', 'busybox'));
    writeFileSync(join(out, 'initramfs.cpio.gz'), baseInitramfs(busybox, applets, modulesDir, kernelVersion).toGzip());
    const source = `${kernelPkg}:arm64=${kernelVer}`;
    writeFileSync(join(out, 'kit.json'), JSON.stringify({ kernelVersion, source, busybox: bbVer }, null, 2) + '\n');
    try {
      renameSync(out, dir);
    } catch (e) {
      if (!readArm64Kit(dir)) throw e;
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  const kit = readArm64Kit(dir);
  if (!kit) throw new GuestKitError('PackageFetch', `arm64 kit at ${dir} is incomplete after building`, {});
  log(`arm64 guest kit ready: ${dir}`);
  return kit;
}
