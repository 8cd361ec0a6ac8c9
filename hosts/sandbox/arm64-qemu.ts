/**
 * An arm64 qemu-system-aarch64 for the arm64 L1 (issue 20's boot benchmark against QEMU `-M virt` with KVM):
 * Debian's qemu-system-arm:arm64 and the shared libraries it needs, fetched with `apt-get download <pkg>:arm64`
 * and unpacked into one cached tree (usr/bin/qemu-system-aarch64, usr/lib/aarch64-linux-gnu/...). The library
 * closure follows the ELF files' DT_NEEDED entries; the package of each library is the one that holds it for
 * the host's architecture (`dpkg -S`), which is installed here since the host's own QEMU needs the same
 * libraries. glibc, libstdc++ and libgcc_s are left out: L1 has them already (arm64.ts).
 */
import { existsSync, lstatSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultCacheDir } from '../guestkit/kit.js';
import { SandboxError } from './errors.js';
import { runTool as run } from './tool-run.js';

/** Libraries L1 already has in /lib (the cross glibc staged by arm64.ts). */
const IN_L1 = /^(ld-linux-aarch64|libc|libm|libdl|libpthread|librt|libresolv|libgcc_s|libstdc\+\+)\.so/;
/** Folders of the tree that hold libraries (the L1 command puts them on LD_LIBRARY_PATH). */
export const ARM64_QEMU_LIB_DIRS = ['usr/lib/aarch64-linux-gnu', 'lib/aarch64-linux-gnu'];
/** The binary's path inside the tree. */
export const ARM64_QEMU_BIN = 'usr/bin/qemu-system-aarch64';

/** The DT_NEEDED names of an ELF file (readelf reads any architecture). */
export function neededOf(file: string): string[] {
  const r = run('readelf', ['-d', file]);
  return [...(r.stdout ?? '').matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]!);
}

/** The host package (no architecture suffix) that holds library `name` for the host's architecture. */
export function packageOf(name: string): string {
  const r = run('dpkg', ['-S', `*-linux-gnu/${name}`]);
  const line = (r.stdout ?? '').split('\n').find((l) => /^[^:]+:[a-z0-9]+: /.test(l));
  if (!line)
    throw new SandboxError('NoSandboxTools', `no installed package holds ${name} (install qemu-system-arm)`, { name });
  return line.split(':')[0]!;
}

/** Every regular file under `dir` (relative paths). */
function filesUnder(dir: string, base = dir): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const n of readdirSync(dir)) {
    const p = join(dir, n);
    const st = lstatSync(p);
    if (st.isDirectory()) out.push(...filesUnder(p, base));
    else if (st.isFile()) out.push(p.slice(base.length + 1));
  }
  return out;
}

/** Downloads `<pkg>:arm64` into `debs` and unpacks it into `tree`. */
function unpack(pkg: string, debs: string, tree: string): void {
  const before = new Set(readdirSync(debs));
  const r = run('apt-get', ['download', `${pkg}:arm64`], debs);
  const deb = readdirSync(debs).find((f) => !before.has(f) && f.endsWith('_arm64.deb'));
  if (!deb)
    throw new SandboxError(
      'NoSandboxTools',
      `apt-get download ${pkg}:arm64 failed: ${(r.stderr ?? '').trim().split('\n').pop()} ` +
        '(needs `dpkg --add-architecture arm64 && apt-get update`)',
      { pkg },
    );
  const x = run('dpkg-deb', ['-x', join(debs, deb), tree]);
  if (x.status !== 0) throw new SandboxError('ImageBuild', `cannot unpack ${deb}: ${x.stderr.trim()}`, { pkg });
}

/**
 * The cached tree with qemu-system-aarch64 for arm64 and its libraries (built on first use, keyed by the host's
 * qemu-system-arm version, which the arm64 package matches).
 */
export function arm64QemuTree(log: (s: string) => void = () => {}): string {
  const version = run('dpkg-query', ['-W', '-f=${Version}', 'qemu-system-arm']).stdout?.trim();
  if (!version) throw new SandboxError('NoSandboxTools', 'qemu-system-arm is not installed here', {});
  const dir = join(defaultCacheDir(), '..', 'arm64', `qemu-${version.replace(/[^\w.+-]/g, '_')}`);
  const tree = join(dir, 'tree');
  if (existsSync(join(dir, 'complete'))) return tree;
  rmSync(dir, { recursive: true, force: true });
  const debs = join(dir, 'debs');
  mkdirSync(debs, { recursive: true });
  mkdirSync(tree, { recursive: true });
  const done = new Set<string>(['qemu-system-arm']);
  unpack('qemu-system-arm', debs, tree);
  for (let changed = true; changed;) {
    changed = false;
    const have = new Set(filesUnder(tree).map((f) => f.split('/').pop()!));
    for (const d of ARM64_QEMU_LIB_DIRS)
      if (existsSync(join(tree, d))) for (const n of readdirSync(join(tree, d))) have.add(n);
    const libs = ARM64_QEMU_LIB_DIRS.flatMap((d) => filesUnder(join(tree, d)).map((f) => join(d, f)));
    const elfs = [ARM64_QEMU_BIN, ...libs];
    for (const f of elfs.filter((e) => /\.so|qemu-system/.test(e))) {
      for (const lib of neededOf(join(tree, f))) {
        if (IN_L1.test(lib) || have.has(lib)) continue;
        const pkg = packageOf(lib);
        if (done.has(pkg)) continue;
        log(`arm64 qemu: ${lib} from ${pkg}:arm64`);
        done.add(pkg);
        unpack(pkg, debs, tree);
        changed = true;
      }
    }
  }
  rmSync(debs, { recursive: true, force: true });
  const libs = 'usr/lib/aarch64-linux-gnu';
  const drops = ['usr/share', 'usr/lib/udev', 'etc', 'usr/bin/qemu-system-arm', 'usr/bin/kvm'];
  for (const sub of ['qemu', 'engines-3', 'ossl-modules', 'gio', 'glib-2.0', 'libexecs.a']) drops.push(join(libs, sub));
  for (const drop of drops) rmSync(join(tree, drop), { recursive: true, force: true });
  writeFileSync(join(dir, 'complete'), [...done].join('\n') + '\n');
  return tree;
}
