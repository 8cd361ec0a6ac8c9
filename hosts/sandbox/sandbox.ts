import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { CpioBuilder, parseCpio } from '../guestkit/cpio.js';
import { defaultCacheDir, guestKit, type GuestKit } from '../guestkit/kit.js';
import { L1_MODULES, GUEST_MODULES, resolveModules } from '../guestkit/modules.js';
import { bootVm, describeBoot, type BootResult } from './boot.js';
import { heartbeatScript, type HeartbeatLimits } from './heartbeat.js';
import { appendBoot, bootRecord, type LedgerNote } from './ledger.js';
import { l1ExtraWords } from './l1-cmdline.js';
import { l1Emulator } from './l1-qemu.js';
import { SandboxError } from './errors.js';
import { planShares, shareMountScript, startShares, type ShareFolder, type SharedFile } from './shares.js';
import { makeExt4, mergedUsr, Staging } from './staging.js';
import type { VirtiofsShare } from './virtiofs.js';
import type { SandboxVariant } from './variant.js';

/** Bump when the base image layout or the L1 stage script changes. */
export const SANDBOX_VERSION = 3;

/** How runInSandbox runs a command in L1: limits, what to copy in or share live, what to copy out, console handling. */
export interface SandboxOptions {
  /** Wall-clock limit for the whole run (L1 boot included); default 20 min. */
  timeoutMs?: number;
  /** Working directory inside L1; default the project root (same absolute path as on the host). */
  cwd?: string;
  /** Extra environment for the command. */
  env?: Record<string, string>;
  /** Extra host files or folders to copy in, at the same absolute paths. */
  files?: string[];
  /**
   * Host files L1 reaches live, at the same absolute paths (not copied): their folders are shared
   * over virtio-fs and each file is bind-mounted in place, so what L1 writes is in the host file.
   */
  shares?: SharedFile[];
  /** Copy what the command wrote under /tsvmm/out back into this host folder. */
  collectInto?: string;
  /** Kill L1 when its console stays silent this long (see BootOptions.silenceTimeoutMs). */
  silenceTimeoutMs?: number;
  /** Live console output. */
  onOutput?: (chunk: string) => void;
  /** Give our stdin to L1's console (interactive). */
  attachStdin?: boolean;
  /** Watch L1's heartbeat with these limits (heartbeat.ts; e.g. DEFAULT_HEARTBEAT); default: no watch. */
  heartbeat?: HeartbeatLimits;
  memoryMiB?: number;
  cpus?: number;
  /** TCG's threading for L1 (default $TSVMM_SANDBOX_TCG_THREAD, else multi): an L1 freeze candidate (README). */
  tcgThread?: 'multi' | 'single';
  /** L1's `-cpu` model (default $TSVMM_SANDBOX_CPU, else max); it must offer SVM for L1's kvm_amd. */
  cpuModel?: string;
  /** What the L1 boot ledger (ledger.ts) records about this boot: who booted L1, what ran when it stopped. */
  ledger?: LedgerNote;
  /** The guest kit to use for L1 (default: guestKit()). */
  kit?: GuestKit;
  /** Another L1 machine (variant.ts), e.g. q35 with an IOMMU and an NVMe controller for VFIO (vfio-variant.ts). */
  variant?: SandboxVariant;
}

/** What runInSandbox reports: L1's boot result plus the command's exit status and what it left in /tsvmm/out. */
export interface SandboxResult extends BootResult {
  /** The command's exit status inside L1 (undefined if it never finished). */
  exitCode?: number;
  /** Where /tsvmm/out was copied, when collectInto was given and it held anything. */
  collected?: string;
  /** A plain report of the run. */
  report: string;
}

/**
 * L1's first beat comes after its kernel boot and module loading (5-30 s here, more on a loaded
 * host); later beats every 5 s. Five minutes without one (as the linux tier judges its console): L1 froze.
 */
export const DEFAULT_HEARTBEAT: HeartbeatLimits = { firstBeatMs: 10 * 60_000, gapMs: 5 * 60_000 };

/** Said after a freeze. */
const FROZEN_HINT =
  "L1's kernel stopped: a known crash of kvm_amd under QEMU TCG (hosts/sandbox/README.md). " +
  'The run did not finish; what the guest wrote before is in its disk files. Start it again.';

/** The plain report of an L1 boot (SandboxResult.report): describeBoot's, and after a freeze what it means. */
export function sandboxReport(r: BootResult): string {
  return describeBoot(r, 'sandbox (L1)') + (r.status === 'frozen' ? `\n  ${FROZEN_HINT}` : '');
}

/** The folder inside L1 where a command may leave files for the host (collectInto). */
export const SANDBOX_OUT = '/tsvmm/out';

/** The project root (the folder with package.json) and the compiled tree this module runs from. */
export function projectLayout(): { root: string; compiled: string } {
  const here = dirname(fileURLToPath(import.meta.url)); // <root>/<outDir>/hosts/sandbox
  const compiled = resolve(here, '..', '..');
  let root = compiled;
  while (!existsSync(join(root, 'package.json'))) {
    const up = dirname(root);
    if (up === root) throw new SandboxError('ImageBuild', `no package.json above ${here}`, {});
    root = up;
  }
  return { root, compiled };
}

const which = (cmd: string): string | undefined => {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  const p = r.stdout.trim();
  return r.status === 0 && p.startsWith('/') ? p : undefined;
};

/** Checks the host tools the sandbox needs; throws one message listing what is missing. */
export function checkSandboxTools(): { qemu: string; qemuImg?: string } {
  const missing: string[] = [];
  const qemu = which('qemu-system-x86_64');
  if (!qemu) missing.push('qemu-system-x86_64 (apt-get install qemu-system-x86)');
  for (const t of ['mke2fs', 'debugfs', 'ldd'])
    if (!which(t)) missing.push(`${t} (apt-get install e2fsprogs libc-bin)`);
  if (missing.length) throw new SandboxError('NoSandboxTools', `the sandbox needs: ${missing.join(', ')}`, { missing });
  return { qemu: qemu!, qemuImg: which('qemu-img') };
}

const QEMU_FIRMWARE =
  /^(bios.*\.bin|linuxboot.*\.bin|pvh\.bin|kvmvapic\.bin|multiboot.*\.bin|qboot\.rom|efi-.*\.rom|pxe-.*\.rom|sgabios\.bin|vgabios.*\.bin|firmware)$/;

/** The world-writable, sticky temporary folders (/tmp, /var/tmp), added first so plans keep them at mode 1777. */
export function stickyTmp(s: Staging): Staging {
  for (const d of ['/tmp', '/var/tmp']) s.add({ kind: 'dir', dest: d, mode: 0o1777 });
  return s;
}

/** Plans the read-only base image: busybox, Node, QEMU (+ libraries, firmware), tools, the guest kit. */
export function planBase(kit: GuestKit, busybox: Uint8Array, applets: string[]): Staging {
  const s = new Staging().mergedUsrLinks();
  for (const d of ['/dev', '/proc', '/sys', '/run', '/root', '/tsvmm/out', '/usr/local/bin', '/etc'])
    s.add({ kind: 'dir', dest: d, mode: 0o755 });
  stickyTmp(s);
  s.add({ kind: 'data', dest: '/usr/bin/busybox', data: busybox, mode: 0o755 });
  s.add({ kind: 'data', dest: '/etc/passwd', data: 'root:x:0:0:root:/root:/bin/sh\n' });
  s.add({ kind: 'data', dest: '/etc/group', data: 'root:x:0:\nkvm:x:106:\n' });
  s.add({ kind: 'data', dest: '/etc/hosts', data: '127.0.0.1 localhost\n::1 localhost\n' });
  if (existsSync('/etc/ld.so.cache')) s.add({ kind: 'file', src: '/etc/ld.so.cache', dest: '/etc/ld.so.cache' });
  s.hostBinary(process.execPath);
  const tools = checkSandboxTools();
  s.hostBinary(tools.qemu);
  if (tools.qemuImg) s.hostBinary(tools.qemuImg);
  for (const opt of [
    'fio',
    'iperf3',
    'mke2fs',
    'debugfs',
    'e2fsck',
    'qemu-io',
    'strace',
    'qemu-storage-daemon',
    'passt',
  ]) {
    const p = which(opt);
    if (p) s.hostBinary(p);
  }
  // vhost-user back ends for the linux tier (package qemu-system-common; not on PATH)
  if (existsSync('/usr/lib/qemu/virtiofsd')) s.hostBinary('/usr/lib/qemu/virtiofsd');
  // npm beside Node (linux tests pack the project and the example plugin inside L1: test/npm-pack)
  const npm = resolve(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm');
  if (existsSync(join(npm, 'bin', 'npm-cli.js'))) s.hostTree(npm, npm);
  for (const dir of ['/usr/share/qemu', '/usr/share/seabios']) {
    if (existsSync(dir))
      s.hostTree(
        dir,
        dir,
        (rel, isDir) =>
          !rel.includes('/') && !QEMU_FIRMWARE.test(rel) && !(isDir && rel === 'firmware') && dir === '/usr/share/qemu',
      );
  }
  // busybox applets where nothing else lives
  for (const a of applets) {
    const dest = mergedUsr('/' + a);
    if (!s.has(dest)) s.add({ kind: 'symlink', dest, target: '/usr/bin/busybox' });
  }
  // the guest kit at its host path, with the modules the guest and L1 lists use
  for (const f of ['kit.json', 'bzImage', 'vmlinux', 'initramfs.cpio.gz'])
    s.add({ kind: 'file', src: join(kit.dir, f), dest: join(kit.dir, f) });
  if (kit.modulesDir && existsSync(kit.modulesDir)) {
    for (const m of resolveModules([...GUEST_MODULES, ...L1_MODULES, { name: 'overlay' }], kit.modulesDir))
      s.add({ kind: 'file', src: join(kit.modulesDir, m), dest: join(kit.modulesDir, m) });
    for (const f of ['modules.builtin', 'modules.order'])
      if (existsSync(join(kit.modulesDir, f)))
        s.add({ kind: 'file', src: join(kit.modulesDir, f), dest: join(kit.modulesDir, f) });
  }
  return s;
}

/** node_modules entries the sandbox leaves out (compilers: the sandbox runs built code). */
const SKIP_NODE_MODULES = new Set(['typescript', '@typescript', '.cache', '@esbuild', 'esbuild']);

/**
 * Plans the per-run overlay: the project (built tree, node_modules, manifests) and extra files, at their host paths.
 */
export function planWork(command: string, o: SandboxOptions, kit: GuestKit): Staging {
  const { root, compiled } = projectLayout();
  const compiledRel = relative(root, compiled);
  const shared = new Set((o.shares ?? []).map((f) => resolve(f.path)));
  // a project under /tmp makes the overlay's upper /tmp, which would hide the base's mode 1777 behind 0755:
  // then only root can create files there (passt, dropped to nobody, could not make its socket)
  const s = stickyTmp(new Staging());
  s.hostTree(root, root, (rel, isDir) => {
    const top = rel.split('/')[0];
    if (top === '.git') return true;
    if (rel === 'node_modules/.bin') return false;
    if (top === 'node_modules') return rel.split('/').length === 2 && SKIP_NODE_MODULES.has(rel.split('/')[1]);
    // build folders: only the one this code runs from
    if ((top === '.build' || top === 'dist') && compiledRel !== '') {
      if (compiledRel === rel || compiledRel.startsWith(rel + '/') || rel.startsWith(compiledRel + '/')) return false;
      return true;
    }
    return !isDir && (/\.(qcow2|raw|img|ext4)$/.test(rel) || shared.has(join(root, rel)));
  });
  for (const f of o.files ?? []) {
    const abs = resolve(f);
    if (shared.has(abs)) continue;
    if (!existsSync(abs))
      throw new SandboxError('ImageBuild', `file to copy into the sandbox does not exist: ${abs}`, { file: abs });
    if (statSync(abs).isDirectory()) s.hostTree(abs, abs);
    else s.add({ kind: 'file', src: abs, dest: abs });
  }
  const env: Record<string, string> = {
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: '/root',
    TSVMM_IN_SANDBOX: '1',
    TSVMM_GUESTKIT_DIR: kit.dir,
    TSVMM_SANDBOX_OUT: SANDBOX_OUT,
    ...(process.env.CI ? { CI: process.env.CI } : {}),
    ...(o.env ?? {}),
  };
  const q = (v: string) => `'${v.replace(/'/g, `'\\''`)}'`;
  const run = [
    '#!/bin/sh',
    ...Object.entries(env).map(([k, v]) => `export ${k}=${q(v)}`),
    `cd ${q(o.cwd ?? root)} || exit 125`,
    command,
    '',
  ].join('\n');
  s.add({ kind: 'data', dest: '/tsvmm/run.sh', data: run, mode: 0o755 });
  return s;
}

/**
 * The L1 stage: beat (when asked), mount the base (ro) and work disks, overlay them, mount the shared
 * folders and bind their files in place, move the overlay onto / and chroot into it (as switch_root does,
 * so the command's root is a real mount: user namespaces and pivot_root work), run /tsvmm/run.sh.
 */
export function l1StageScript(
  shares: readonly ShareFolder[] = [],
  heartbeat = false,
  variant?: SandboxVariant,
): string {
  return `fail() { echo "tsvmm-sandbox: $*"; exit 125; }
${heartbeat ? heartbeatScript() : ''}${variant ? `${variant.stage}\n` : ''}mkdir -p /base /work /newroot
BASE=$(findfs LABEL=tsvmm-base) || fail "no disk labelled tsvmm-base"
WORK=$(findfs LABEL=tsvmm-work) || fail "no disk labelled tsvmm-work"
mount -t ext4 -o ro "$BASE" /base || fail "cannot mount the base disk $BASE"
mount -t ext4 "$WORK" /work || fail "cannot mount the work disk $WORK"
mkdir -p /work/upper /work/ovlwork /work/out
mount -t overlay overlay -o lowerdir=/base,upperdir=/work/upper,workdir=/work/ovlwork /newroot || fail "overlay mount failed"
mount --bind /dev /newroot/dev
mount -t devpts devpts /newroot/dev/pts 2>/dev/null
mount -t proc proc /newroot/proc
mount -t sysfs sysfs /newroot/sys
mount -t tmpfs tmpfs /newroot/run
mount --bind /work/out /newroot${SANDBOX_OUT}
${shareMountScript(shares, '/newroot')}[ -e /dev/kvm ] || echo "tsvmm-sandbox: warning: /dev/kvm is missing in L1"
# switch_root-style: the overlay becomes the mount at / (a chroot into /newroot would leave the command on
# rootfs, where the kernel refuses user namespaces and pivot_root: passt and similar tools sandbox themselves)
cd /newroot || fail "cannot enter /newroot"
mount --move . / || fail "cannot move the new root onto /"
chroot . /bin/sh /tsvmm/run.sh
rc=$?
sync
chroot . umount ${SANDBOX_OUT} 2>/dev/null
exit $rc
`;
}

/** The L1 initramfs: the kit's, plus KVM/overlay modules and the stage script (concatenated archive). */
function l1Initramfs(
  kit: GuestKit,
  shares: readonly ShareFolder[],
  heartbeat: boolean,
  variant?: SandboxVariant,
): Buffer {
  const c = new CpioBuilder();
  if (!kit.modulesDir || !existsSync(kit.modulesDir)) {
    throw new SandboxError(
      'ImageBuild',
      'the guest kit has no kernel modules folder (kvm.ko, kvm-amd.ko are needed for L1); build the kit from Debian packages',
      {},
    );
  }
  const mods = resolveModules([...L1_MODULES, { name: 'overlay' }, ...(variant?.modules ?? [])], kit.modulesDir);
  for (const m of mods) c.file(`lib/modules/${kit.kernelVersion}/${m}`, readFileSync(join(kit.modulesDir, m)));
  c.file('etc/tsvmm/modules.d/20-l1.list', mods.join('\n') + '\n');
  c.file('tsvmm/script', l1StageScript(shares, heartbeat, variant), 0o755);
  return Buffer.concat([readFileSync(kit.initramfs), c.toGzip()]);
}

/** The host CPU's TSC rate in kHz: L1 is told it, so a busy host cannot spoil its TSC calibration. */
function hostTscKhz(): number | undefined {
  try {
    const m = /^cpu MHz\s*:\s*([\d.]+)/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    return m ? Math.round(Number(m[1]) * 1000) : undefined;
  } catch {
    return undefined;
  }
}

/** Builds (or reuses) the cached base image. */
async function baseImage(kit: GuestKit): Promise<string> {
  const init = parseCpio(gunzipSync(readFileSync(kit.initramfs)));
  const bb = init.get('bin/busybox');
  if (!bb) throw new SandboxError('ImageBuild', `${kit.initramfs} has no bin/busybox`, {});
  const applets = [...init.entries()].filter(([, e]) => (e.mode & 0o170000) === 0o120000).map(([p]) => p);
  const plan = planBase(kit, bb.data, applets);
  const dir = join(dirname(defaultCacheDir()), 'sandbox');
  const image = join(dir, `base-${plan.key(`v${SANDBOX_VERSION}`)}.ext4`);
  if (existsSync(image)) return image;
  mkdirSync(dir, { recursive: true });
  const tmp = mkdtempSync(join(dir, '.base-'));
  try {
    plan.materialize(join(tmp, 'root'));
    makeExt4(join(tmp, 'root'), join(tmp, 'base.ext4'), 'tsvmm-base', plan.bytes(), 32 << 20);
    renameSync(join(tmp, 'base.ext4'), image);
    // older bases are stale now; a run still using one keeps its open file
    for (const f of readdirSync(dir))
      if (/^base-.*\.ext4$/.test(f) && join(dir, f) !== image) rmSync(join(dir, f), { force: true });
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return image;
}

/**
 * Runs a shell command inside L1: a Linux under QEMU TCG (`-cpu max`, so kvm_amd gives L1 a real
 * /dev/kvm) with Node, QEMU, the project and the guest kit at their host paths. Returns the exit status
 * and the console; enforces the time limit and removes everything it made.
 */
export async function runInSandbox(command: string, o: SandboxOptions = {}): Promise<SandboxResult> {
  const shares = planShares(o.shares ?? []); // refuses what cannot be shared before any work
  const variant = o.variant;
  if (variant && shares.length > 0)
    throw new SandboxError(
      'ImageBuild',
      `the sandbox variant ${variant.name} cannot share folders (virtio-fs is virtio-mmio)`,
      {},
    );
  const tools = checkSandboxTools();
  const kit = o.kit ?? (await guestKit());
  const base = await baseImage(kit);
  const tmp = mkdtempSync(join(tmpdir(), 'tsvmm-sandbox-'));
  let daemons: VirtiofsShare[] = [];
  try {
    const work = planWork(command, o, kit);
    const workRoot = join(tmp, 'work');
    work.materialize(join(workRoot, 'upper'));
    mkdirSync(join(workRoot, 'ovlwork'));
    mkdirSync(join(workRoot, 'out'));
    const workImg = join(tmp, 'work.ext4');
    makeExt4(workRoot, workImg, 'tsvmm-work', work.bytes(), 6 * 2 ** 30);
    rmSync(workRoot, { recursive: true, force: true });
    const initrd = join(tmp, 'l1-initramfs.gz');
    writeFileSync(initrd, l1Initramfs(kit, shares, o.heartbeat !== undefined, variant));
    daemons = await startShares(shares, tmp);
    // a share that goes away leaves L1 waiting on it: stop the run, unless QEMU ended meanwhile
    const abort = new AbortController();
    for (const d of daemons) d.onUnexpectedExit((why) => setTimeout(() => abort.abort(new Error(why)), 2000).unref());
    const khz = hostTscKhz();
    const l1 = l1Emulator(tools.qemu, variant !== undefined);
    const r = await bootVm({
      qemu: l1.qemu,
      accel: 'tcg',
      tcgThread: o.tcgThread ?? tcgThreadFromEnv(),
      cpuModel: o.cpuModel ?? (process.env.TSVMM_SANDBOX_CPU || undefined),
      kernel: kit.vmlinux,
      initramfs: initrd,
      // TSVMM_SANDBOX_L1_THP, TSVMM_SANDBOX_APPEND: extra words for L1's kernel (experiments), l1-cmdline.ts
      machine: variant?.machine,
      append:
        `console=ttyS0 panic=-1 quiet${khz ? ` tsc_early_khz=${khz}` : ''} tsc=reliable${o.attachStdin ? ' tsvmm.stdin=console' : ''}` +
        `${variant ? ` ${variant.append}` : ''}` +
        l1ExtraWords(),
      memoryMiB: o.memoryMiB ?? 3584,
      cpus: o.cpus ?? 2,
      timeoutMs: o.timeoutMs ?? 20 * 60_000,
      silenceTimeoutMs: o.silenceTimeoutMs,
      onOutput: o.onOutput,
      attachStdin: o.attachStdin,
      heartbeat: o.heartbeat,
      abort: abort.signal,
      sharedMemory: daemons.length > 0,
      extraArgs: [
        ...l1.args,
        // vhost-user back ends (libvhost-user) serve only modern virtio: microvm's virtio-mmio is legacy by default
        ...(daemons.length > 0 ? ['-global', 'virtio-mmio.force-legacy=false'] : []),
        ...daemons.flatMap((d) => d.qemuArgs),
        ...(variant?.qemuArgs ?? []),
        '-drive',
        `if=none,id=base,file=${base},format=raw,readonly=on`,
        '-device',
        `${variant?.diskDevice ?? 'virtio-blk-device'},drive=base`,
        '-drive',
        `if=none,id=work,file=${workImg},format=raw`,
        '-device',
        `${variant?.diskDevice ?? 'virtio-blk-device'},drive=work`,
      ],
    });
    const report = sandboxReport(r);
    const problem = appendBoot(bootRecord(r, report, variant?.name ?? '', o.ledger));
    if (problem && process.env.VMM_DEBUG) process.stderr.write(`${problem}\n`);
    let collected: string | undefined;
    if (o.collectInto) collected = collectOut(workImg, o.collectInto);
    return { ...r, collected, report };
  } finally {
    for (const d of daemons) d.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** $TSVMM_SANDBOX_TCG_THREAD (an experiment's L1 threading), checked. */
function tcgThreadFromEnv(): 'multi' | 'single' | undefined {
  const v = process.env.TSVMM_SANDBOX_TCG_THREAD;
  if (!v) return undefined;
  if (v === 'multi' || v === 'single') return v;
  throw new SandboxError('Config', `TSVMM_SANDBOX_TCG_THREAD must be multi or single, not '${v}'`, {});
}

/** Copies /out of the work image into `dest` with debugfs (no mount needed). */
function collectOut(image: string, dest: string): string | undefined {
  mkdirSync(dest, { recursive: true });
  const r = spawnSync('debugfs', ['-R', `rdump /out ${dest}`, image], { encoding: 'utf8', timeout: 120_000 });
  const out = join(dest, 'out');
  if (r.status !== 0 || !existsSync(out)) return undefined;
  // flatten dest/out/* into dest/*
  for (const f of readdirSync(out)) renameSync(join(out, f), join(dest, f));
  rmSync(out, { recursive: true, force: true });
  return dest;
}
