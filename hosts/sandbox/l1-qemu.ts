/**
 * The QEMU that emulates the sandbox's L1 (TCG with nested SVM). Debian 12's own QEMU (7.2) is what the host has
 * installed, and it stays the QEMU inside L1 (the benchmarks' peer, qemu-img, qemu-storage-daemon). L1 itself is
 * emulated by a newer QEMU when one is cached: Debian's bookworm-backports build (10.0), fetched with
 * `apt-get download` through a private sources list and package index (the host's apt configuration is not
 * touched) and unpacked into `~/.cache/tsvmm/l1-qemu/<version>/` (its binary and firmware folder, `-L`). Why: under
 * 7.2's TCG the L1 kernel froze or panicked in about one boot in twenty and L2 guests triple-faulted in most full
 * linux-tier runs; under 10.0 both have been rarer so far, not gone (hosts/sandbox/README.md "Known problem").
 *
 * Choice (l1Emulator): `TSVMM_SANDBOX_L1_QEMU=host` the host's QEMU; `TSVMM_SANDBOX_L1_QEMU=<binary>` that one
 * (with `TSVMM_SANDBOX_L1_QEMU_DATA=<firmware folder>`); else the cached tree when complete; else the host's.
 * `node dist/hosts/sandbox/l1-qemu.js` fetches the tree (npm run setup runs it).
 */
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultCacheDir } from '../guestkit/kit.js';
import { SandboxError } from './errors.js';
import { runTool as run } from './tool-run.js';

/** Where the packages come from. */
export const L1_QEMU_SOURCE = 'deb http://deb.debian.org/debian bookworm-backports main';
/** The packages unpacked: the binary and its firmware files. */
export const L1_QEMU_PACKAGES = ['qemu-system-x86', 'qemu-system-data'] as const;
/** The binary and the firmware folder inside a tree. */
const BIN = 'usr/bin/qemu-system-x86_64';
const DATA = 'usr/share/qemu';

/** The emulator for one L1 boot: its binary, the arguments it needs (`-L`), and where the choice came from. */
export interface L1Qemu {
  qemu: string;
  args: string[];
  from: 'env' | 'cache' | 'host';
}

/** The folder holding the cached trees (one per version). */
export function l1QemuCache(): string {
  return join(defaultCacheDir(), '..', 'l1-qemu');
}

/** The newest complete tree in the cache, or undefined. */
export function cachedL1Qemu(cache = l1QemuCache()): string | undefined {
  if (!existsSync(cache)) return undefined;
  const trees = readdirSync(cache)
    .filter((v) => existsSync(join(cache, v, 'complete')) && existsSync(join(cache, v, 'tree', BIN)))
    .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  const v = trees.pop();
  return v === undefined ? undefined : join(cache, v, 'tree');
}

/** The QEMU that emulates a default L1 (see the file comment); a variant machine keeps the host's. */
export function l1Emulator(hostQemu: string, variant = false, env = process.env, cache = l1QemuCache()): L1Qemu {
  const asked = env.TSVMM_SANDBOX_L1_QEMU;
  if (asked === 'host') return { qemu: hostQemu, args: [], from: 'host' };
  if (asked) {
    const data = env.TSVMM_SANDBOX_L1_QEMU_DATA;
    return { qemu: asked, args: data ? ['-L', data] : [], from: 'env' };
  }
  // the IOMMU variant's passthrough proof needs the host's: under 10.0 the NVMe's completions never reached L2
  const tree = variant ? undefined : cachedL1Qemu(cache);
  if (tree === undefined) return { qemu: hostQemu, args: [], from: 'host' };
  return { qemu: join(tree, BIN), args: ['-L', join(tree, DATA)], from: 'cache' };
}

/** Libraries the binary needs that the host lacks (`ldd` says "not found"). */
function missingLibraries(bin: string): string[] {
  const r = run('ldd', [bin]);
  return [...(r.stdout ?? '').matchAll(/^\s*(\S+) => not found/gm)].map((m) => m[1]!);
}

/**
 * Downloads and unpacks the backports QEMU into the cache (nothing when a complete tree is there) and returns the
 * tree. Throws a SandboxError when apt-get cannot reach the suite or the binary lacks host libraries.
 */
export function fetchL1Qemu(log: (s: string) => void = () => {}, cache = l1QemuCache()): string {
  const have = cachedL1Qemu(cache);
  if (have) return have;
  const work = join(cache, 'apt');
  rmSync(work, { recursive: true, force: true });
  mkdirSync(join(work, 'lists', 'partial'), { recursive: true });
  mkdirSync(join(work, 'debs'), { recursive: true });
  writeFileSync(join(work, 'sources.list'), `${L1_QEMU_SOURCE}\n`);
  const apt = [
    '-o',
    `Dir::Etc::sourcelist=${join(work, 'sources.list')}`,
    '-o',
    'Dir::Etc::sourceparts=/dev/null',
    '-o',
    `Dir::State::Lists=${join(work, 'lists')}`,
    '-o',
    'APT::Sandbox::User=root',
  ];
  log(`l1 qemu: apt-get update (${L1_QEMU_SOURCE})`);
  const up = run('apt-get', [...apt, 'update']);
  if (up.status !== 0)
    throw new SandboxError('NoSandboxTools', `apt-get update of bookworm-backports failed: ${lastLine(up.stderr)}`, {});
  const dl = run('apt-get', [...apt, 'download', ...L1_QEMU_PACKAGES], join(work, 'debs'));
  const debs = readdirSync(join(work, 'debs')).filter((f) => f.endsWith('.deb'));
  if (dl.status !== 0 || debs.length !== L1_QEMU_PACKAGES.length)
    throw new SandboxError(
      'NoSandboxTools',
      `apt-get download ${L1_QEMU_PACKAGES.join(' ')}: ${lastLine(dl.stderr)}`,
      {},
    );
  const version = /_\d+%3a([\d.]+)/.exec(debs.find((d) => d.startsWith('qemu-system-x86_')) ?? '')?.[1] ?? 'unknown';
  const dir = join(cache, version);
  rmSync(dir, { recursive: true, force: true });
  const tree = join(dir, 'tree');
  mkdirSync(tree, { recursive: true });
  for (const d of debs) {
    const x = run('dpkg-deb', ['-x', join(work, 'debs', d), tree]);
    if (x.status !== 0) throw new SandboxError('ImageBuild', `cannot unpack ${d}: ${lastLine(x.stderr)}`, {});
  }
  const missing = missingLibraries(join(tree, BIN));
  if (missing.length)
    throw new SandboxError('NoSandboxTools', `QEMU ${version} needs libraries this host lacks: ${missing.join(' ')}`, {
      missing,
    });
  writeFileSync(join(dir, 'complete'), `${debs.join('\n')}\n`);
  rmSync(work, { recursive: true, force: true });
  log(`l1 qemu: QEMU ${version} in ${tree}`);
  return tree;
}

const lastLine = (s: string | null | undefined): string => (s ?? '').trim().split('\n').pop() ?? '';

// `node dist/hosts/sandbox/l1-qemu.js`: fetch (npm run setup); a failure leaves the host's QEMU in charge of L1
if (import.meta.url === `file://${process.argv[1]}`) {
  try {
    fetchL1Qemu((s) => console.log(s));
  } catch (err) {
    console.log(`l1 qemu: ${(err as Error).message}; L1 runs under the host's QEMU`);
  }
}
