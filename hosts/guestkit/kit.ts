import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { extractVmlinux, parseSetupHeader } from './bzimage.js';
import { CpioBuilder } from './cpio.js';
import {
  aptAvailable,
  candidateVersion,
  fetchDeb,
  NOT_DEBIAN_HELP,
  resolveKernelPackage,
  unpackDeb,
} from './debian.js';
import { inspectElf } from './elf.js';
import { GuestKitError } from './errors.js';
import { initScript } from './init-script.js';
import { GUEST_MODULES, resolveModules } from './modules.js';

/** Bump when the kit's contents change (init, module list, layout): old caches are then rebuilt. */
export const KIT_VERSION = 6;

/**
 * A ready guest kit: the files a Linux guest boots from (absolute paths: in the kit's cache folder, which owns
 * them, or the user's own files) and what they are; recorded in the folder's kit.json.
 */
export interface GuestKit {
  /** The kernel as a bzImage (Linux boot protocol). */
  bzImage: string;
  /** The same kernel as an ELF vmlinux with a PVH entry note. */
  vmlinux: string;
  /** gzip'd newc initramfs with busybox, the virtio modules and the kit's /init. */
  initramfs: string;
  kernelVersion: string;
  /** lib/modules/<kernelVersion> of the kernel ('' when the kit came from user files). */
  modulesDir: string;
  /** The folder holding the kit. */
  dir: string;
  /** Physical PVH entry point from the vmlinux's Xen note. */
  pvhEntry?: number;
  /** Where it came from: a Debian package `name=version`, or 'user files'. */
  source: string;
}

/** How to get a guest kit: where to cache it, which kernel package, or the user's own files instead. */
export interface GuestKitOptions {
  /** Cache root; default ${XDG_CACHE_HOME:-~/.cache}/tsvmm/guestkit. */
  cacheDir?: string;
  /** Kernel package (a metapackage is resolved): default $TSVMM_KERNEL_PACKAGE or linux-image-cloud-amd64. */
  kernelPackage?: string;
  /** Use these files instead of Debian's (also $TSVMM_KERNEL / $TSVMM_INITRAMFS / $TSVMM_VMLINUX). */
  kernel?: string;
  initramfs?: string;
  vmlinux?: string;
  /** Progress messages; default stderr. */
  log?: (msg: string) => void;
  /**
   * Ask apt for the newest package versions even when a kit was built before (default:
   * $TSVMM_GUESTKIT_REFRESH=1). Without it a kit built earlier for the same kernel package
   * and KIT_VERSION is reused after a stat or two, with no apt-cache run.
   */
  refresh?: boolean;
}

/** The default cache root for guest kits: ${XDG_CACHE_HOME:-~/.cache}/tsvmm/guestkit. */
export function defaultCacheDir(): string {
  const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'tsvmm', 'guestkit');
}

const MANIFEST = 'kit.json';

function readKitDir(dir: string): GuestKit | undefined {
  const f = join(dir, MANIFEST);
  if (!existsSync(f)) return undefined;
  const m = JSON.parse(readFileSync(f, 'utf8')) as Omit<
    GuestKit,
    'dir' | 'bzImage' | 'vmlinux' | 'initramfs' | 'modulesDir'
  > & { modules?: string };
  const kit: GuestKit = {
    ...m,
    dir,
    bzImage: join(dir, 'bzImage'),
    vmlinux: join(dir, 'vmlinux'),
    initramfs: join(dir, 'initramfs.cpio.gz'),
    modulesDir: m.modules ? join(dir, m.modules) : '',
  };
  for (const p of [kit.bzImage, kit.vmlinux, kit.initramfs]) if (!existsSync(p)) return undefined;
  return kit;
}

/** `current-<package>.json` in the cache root names the kit folder built last for that kernel package. */
const currentFile = (cacheDir: string, meta: string): string =>
  join(cacheDir, `current-${meta.replace(/[^A-Za-z0-9._+-]/g, '_')}.json`);

/** The kit named by the pointer file, if it is still complete and of this KIT_VERSION (a few stats, no apt). */
function readCurrent(cacheDir: string, meta: string): GuestKit | undefined {
  let key: unknown;
  try {
    key = (JSON.parse(readFileSync(currentFile(cacheDir, meta), 'utf8')) as { key?: unknown }).key;
  } catch {
    return undefined;
  }
  // The pointer is only a hint: a name, never a path, and only for this kit version.
  if (typeof key !== 'string' || !/^[A-Za-z0-9._+-]+$/.test(key) || !key.endsWith(`__kit${KIT_VERSION}`))
    return undefined;
  try {
    return readKitDir(join(cacheDir, key));
  } catch {
    return undefined;
  }
}

function writeCurrent(cacheDir: string, meta: string, key: string): void {
  const f = currentFile(cacheDir, meta);
  const tmp = `${f}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, JSON.stringify({ key }) + '\n');
    renameSync(tmp, f);
  } catch {
    rmSync(tmp, { force: true });
  } // a cache hint only: the next run asks apt again
}

/** The Linux version string a bzImage carries (setup header kernel_version pointer). */
export function bzImageVersion(img: Uint8Array): string {
  parseSetupHeader(img);
  const ptr = img[0x20e] | (img[0x20f] << 8);
  const at = ptr + 0x200;
  if (ptr === 0 || at >= img.length) return 'unknown';
  const end = img.indexOf(0, at);
  return Buffer.from(img.subarray(at, end < 0 ? Math.min(img.length, at + 256) : end))
    .toString('latin1')
    .split(' ')[0];
}

/**
 * The guest kit: a Debian kernel (bzImage + PVH vmlinux) and a small initramfs whose /init
 * runs a script and reports between markers. Built once per package versions and kit version,
 * cached outside the clone; later calls return the cached files.
 */
export async function guestKit(opts: GuestKitOptions = {}): Promise<GuestKit> {
  const log = opts.log ?? ((m: string) => process.stderr.write(`guestkit: ${m}\n`));
  const cacheDir = resolve(opts.cacheDir ?? defaultCacheDir());

  // 1. A prepared kit folder (the sandbox sets this inside L1).
  if (process.env.TSVMM_GUESTKIT_DIR) {
    const kit = readKitDir(process.env.TSVMM_GUESTKIT_DIR);
    if (!kit)
      throw new GuestKitError(
        'Unsupported',
        `TSVMM_GUESTKIT_DIR=${process.env.TSVMM_GUESTKIT_DIR} holds no complete kit (${MANIFEST}, bzImage, vmlinux, initramfs.cpio.gz)`,
        {},
      );
    return kit;
  }

  // 2. User-provided files.
  const kernel = opts.kernel ?? process.env.TSVMM_KERNEL;
  const initramfs = opts.initramfs ?? process.env.TSVMM_INITRAMFS;
  if (kernel || initramfs) {
    if (!kernel || !initramfs)
      throw new GuestKitError(
        'Unsupported',
        'give both a kernel (TSVMM_KERNEL / --kernel) and an initramfs (TSVMM_INITRAMFS / --initramfs)',
        {},
      );
    return userKit(resolve(kernel), resolve(initramfs), opts.vmlinux ?? process.env.TSVMM_VMLINUX, cacheDir, log);
  }

  // 3. Debian packages: the kit built last for this package, unless asked to refresh.
  const meta = opts.kernelPackage ?? process.env.TSVMM_KERNEL_PACKAGE ?? 'linux-image-cloud-amd64';
  const refresh = opts.refresh ?? process.env.TSVMM_GUESTKIT_REFRESH === '1';
  if (!refresh) {
    const last = readCurrent(cacheDir, meta);
    if (last) return last;
  }
  if (!aptAvailable()) throw new GuestKitError('Unsupported', NOT_DEBIAN_HELP, {});
  const kernelPkg = resolveKernelPackage(meta);
  const kernelVer = candidateVersion(kernelPkg);
  const bbVer = candidateVersion('busybox-static');
  const key = `${kernelPkg}_${kernelVer}__busybox_${bbVer}__kit${KIT_VERSION}`.replace(/[^A-Za-z0-9._+-]/g, '_');
  const dir = join(cacheDir, key);
  const cached = readKitDir(dir);
  if (cached) {
    writeCurrent(cacheDir, meta, key);
    return cached;
  }

  log(`building the guest kit from ${kernelPkg}=${kernelVer} and busybox-static=${bbVer} into ${dir}`);
  mkdirSync(cacheDir, { recursive: true });
  const tmp = join(cacheDir, `.build-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    const out = join(tmp, 'kit');
    mkdirSync(out, { recursive: true });
    const kdeb = fetchDeb(kernelPkg, kernelVer, join(tmp, 'debs'));
    const bdeb = fetchDeb('busybox-static', bbVer, join(tmp, 'debs'));
    unpackDeb(kdeb, join(tmp, 'kpkg'));
    unpackDeb(bdeb, join(tmp, 'bbpkg'));

    const modRoot = join(tmp, 'kpkg', 'lib', 'modules');
    const versions = existsSync(modRoot) ? readdirSync(modRoot) : [];
    if (versions.length !== 1)
      throw new GuestKitError(
        'PackageFetch',
        `expected one lib/modules/<version> in ${kernelPkg}, found ${versions.length}`,
        {},
      );
    const kernelVersion = versions[0];
    const vmlinuz = join(tmp, 'kpkg', 'boot', `vmlinuz-${kernelVersion}`);
    if (!existsSync(vmlinuz))
      throw new GuestKitError('PackageFetch', `${kernelPkg} has no boot/vmlinuz-${kernelVersion}`, {});

    const bz = readFileSync(vmlinuz);
    const { vmlinux, compression } = extractVmlinux(bz);
    const elf = inspectElf(vmlinux);
    if (elf.pvhEntry === undefined)
      throw new GuestKitError(
        'MissingPvhNote',
        `the vmlinux of ${kernelPkg} has no Xen PHYS32_ENTRY note (kernel built without CONFIG_PVH?)`,
        {},
      );
    log(
      `kernel ${kernelVersion}: ${compression} payload, vmlinux ${(vmlinux.length / 1e6).toFixed(1)} MB, PVH entry 0x${elf.pvhEntry.toString(16)}`,
    );
    writeFileSync(join(out, 'bzImage'), bz);
    writeFileSync(join(out, 'vmlinux'), vmlinux);

    const modulesDir = join(out, 'modules', kernelVersion);
    mkdirSync(join(out, 'modules'), { recursive: true });
    renameSync(join(modRoot, kernelVersion), modulesDir);

    const busybox = join(tmp, 'bbpkg', 'bin', 'busybox');
    const cpio = baseInitramfs(readFileSync(busybox), busyboxApplets(busybox), modulesDir, kernelVersion);
    writeFileSync(join(out, 'initramfs.cpio.gz'), cpio.toGzip());

    const manifest = {
      kernelVersion,
      pvhEntry: elf.pvhEntry,
      source: `${kernelPkg}=${kernelVer}`,
      busybox: bbVer,
      compression,
      kitVersion: KIT_VERSION,
      modules: `modules/${kernelVersion}`,
    };
    writeFileSync(join(out, MANIFEST), JSON.stringify(manifest, null, 2) + '\n');
    try {
      renameSync(out, dir);
    } catch (e) {
      if (!readKitDir(dir)) throw e; // someone else finished first: use theirs
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  const kit = readKitDir(dir);
  if (!kit) throw new GuestKitError('PackageFetch', `guest kit at ${dir} is incomplete after building`, {});
  writeCurrent(cacheDir, meta, key);
  log(`guest kit ready: ${dir}`);
  return kit;
}

/** Applet paths (bin/ls, usr/sbin/...) a busybox binary provides; [] if it cannot be run here. */
export function busyboxApplets(busybox: string): string[] {
  const r = spawnSync(busybox, ['--list-full'], { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0) return [];
  return r.stdout
    .split('\n')
    .map((s) => s.trim())
    .filter((s) => s && s !== 'bin/busybox' && s !== 'linuxrc' && s !== 'init');
}

/** The kit's initramfs: busybox + applet links, the guest modules, /init, device nodes. */
export function baseInitramfs(
  busybox: Uint8Array,
  applets: string[],
  modulesDir: string,
  kernelVersion: string,
): CpioBuilder {
  const c = new CpioBuilder();
  for (const d of [
    'bin',
    'sbin',
    'usr/bin',
    'usr/sbin',
    'proc',
    'sys',
    'dev',
    'tmp',
    'run',
    'root',
    'mnt',
    'etc/tsvmm/modules.d',
    'tsvmm',
  ])
    c.dir(d);
  c.chardev('dev/console', 5, 1, 0o600).chardev('dev/null', 1, 3, 0o666);
  c.file('bin/busybox', busybox, 0o755);
  for (const a of applets) c.symlink(a, '/bin/busybox');
  if (applets.length === 0) c.file('etc/tsvmm/install-busybox', '1\n');
  c.file('etc/passwd', 'root::0:0:root:/root:/bin/sh\n');
  c.file('etc/group', 'root:x:0:\n');
  let init = initScript();
  if (applets.length === 0) init = init.replace('export PATH=', '/bin/busybox --install -s\nexport PATH=');
  c.file('init', init, 0o755);
  const mods = resolveModules(GUEST_MODULES, modulesDir);
  for (const m of mods) c.file(`lib/modules/${kernelVersion}/${m}`, readFileSync(join(modulesDir, m)));
  c.file('etc/tsvmm/modules.d/10-guest.list', mods.join('\n') + '\n');
  return c;
}

function userKit(
  kernel: string,
  initramfs: string,
  vmlinuxPath: string | undefined,
  cacheDir: string,
  log: (m: string) => void,
): GuestKit {
  for (const f of [kernel, initramfs])
    if (!existsSync(f)) throw new GuestKitError('Unsupported', `${f} does not exist`, { file: f });
  const bz = readFileSync(kernel);
  const kernelVersion = bzImageVersion(bz);
  let vmlinux = vmlinuxPath ? resolve(vmlinuxPath) : '';
  if (!vmlinux) {
    const st = statSync(kernel);
    const key = createHash('sha256').update(bz).digest('hex').slice(0, 16);
    vmlinux = join(cacheDir, 'user', `vmlinux-${key}`);
    if (!existsSync(vmlinux) || statSync(vmlinux).mtimeMs < st.mtimeMs) {
      log(`extracting vmlinux from ${kernel}`);
      mkdirSync(join(cacheDir, 'user'), { recursive: true });
      writeFileSync(vmlinux + '.tmp', extractVmlinux(bz).vmlinux);
      renameSync(vmlinux + '.tmp', vmlinux);
    }
  }
  const pvhEntry = inspectElf(readFileSync(vmlinux)).pvhEntry;
  return {
    bzImage: kernel,
    vmlinux,
    initramfs,
    kernelVersion,
    modulesDir: process.env.TSVMM_MODULES ?? '',
    dir: cacheDir,
    pvhEntry,
    source: 'user files',
  };
}

/** A small gzip'd cpio holding /tsvmm/script (and any extra files), to append to the kit's initramfs. */
export function scriptInitramfs(script: string, extra: Record<string, Uint8Array | string> = {}): Buffer {
  const c = new CpioBuilder();
  c.file('tsvmm/script', script, 0o755);
  for (const [p, d] of Object.entries(extra)) c.file(p, d, 0o755);
  return c.toGzip();
}

/**
 * Writes kit initramfs + an appended script archive as one file (the kernel unpacks concatenated archives in order).
 */
export function writeInitramfsWithScript(
  kit: Pick<GuestKit, 'initramfs'>,
  script: string,
  outPath: string,
  extra: Record<string, Uint8Array | string> = {},
): string {
  writeFileSync(outPath, Buffer.concat([readFileSync(kit.initramfs), scriptInitramfs(script, extra)]));
  return outPath;
}
