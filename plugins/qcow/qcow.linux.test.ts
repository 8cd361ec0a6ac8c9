/**
 * Linux tier: ONE boot of the guest kit kernel in the micro VMM (hosts/micro.yaml) with two
 * qcow2 overlays (format qcow2 through plugins/qcow, allowBacking) made by qemu-img:
 *   vda: overlay (64 KiB clusters) over a raw base, larger than its base;
 *   vdb: overlay (16 KiB clusters) over a qcow2 base of the same content.
 * The base holds a known pattern with a zero gap. The guest writes host-made payloads (partial
 * sectors of a cluster, an unaligned run across clusters, a run across the backing file's end,
 * past it), discards 2 MiB, syncs, reads the whole disk back with O_DIRECT and powers off.
 * The host checks: `qemu-img check` clean, `qemu-img convert -O raw` equals the expected bytes,
 * the guest's read-back equals them too, and the base files are untouched.
 * Runs where Linux can boot (inside the sandbox the runner sets TSVMM_GUESTKIT_DIR; or TSVMM_LINUX=1);
 * needs qemu-img (the sandbox image carries it when the host has it).
 */
import { expect } from 'chai';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { guestKit, parseGuestOutput, writeInitramfsWithScript, type GuestKit } from '../../hosts/guestkit/index.js';
import { runVm, type RunResult } from '../../core/vmm/run.js';
import { skipUnlessCi } from '../../test/setup/environment.js';

const KiB = 1024;
const MiB = 1 << 20;
const BASE_SIZE = 14 * MiB;
const DISK_SIZE = 20 * MiB;
const here = path.dirname(fileURLToPath(import.meta.url));

function repoRoot(): string {
  for (let d = here; d !== path.dirname(d); d = path.dirname(d)) {
    if (fs.existsSync(path.join(d, 'hosts', 'micro.yaml'))) return d;
  }
  throw new Error('cannot find hosts/micro.yaml above ' + here);
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
/** The guest's read-backs use md5 (busybox md5sum is ~3x faster than sha256sum in the nested guest). */
const md5 = (b: Uint8Array): string => createHash('md5').update(b).digest('hex');

function which(cmd: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim().startsWith('/') ? r.stdout.trim() : undefined;
}

/** The base pattern: every 512-byte sector starts with its number, the rest a fixed byte run; 8-10 MiB stays zero. */
function basePattern(): Buffer {
  const b = Buffer.alloc(BASE_SIZE);
  for (let s = 0; s < BASE_SIZE / 512; s++) {
    const off = s * 512;
    if (off >= 8 * MiB && off < 10 * MiB) continue;
    b.write(`base sector ${s}\n`, off, 'latin1');
    for (let i = 32; i < 512; i++) b[off + i] = (s * 31 + i) & 0xff;
  }
  return b;
}

/** Guest writes: offsets and lengths in bytes (multiples of 512), data made here and shipped in the initramfs. */
const WRITES: { name: string; offset: number; length: number }[] = [
  { name: 'w-partial', offset: 3 * 64 * KiB + 1536, length: 512 }, // one sector inside a cluster: COW from the base
  { name: 'w-run', offset: 3 * MiB - 4 * KiB, length: MiB + 4 * KiB + 512 }, // unaligned, across clusters
  { name: 'w-gap', offset: 9 * MiB + 512, length: 8 * KiB }, // into the base's zero gap
  { name: 'w-end', offset: BASE_SIZE - 32 * KiB, length: 64 * KiB }, // across the backing file's end
  { name: 'w-past', offset: 19 * MiB, length: 4 * KiB }, // past the backing file
];
const DISCARD = { offset: 5 * MiB, length: 2 * MiB };

function guestScript(): string {
  const w = (dev: string) => WRITES.map((x) => `dd if=/tsvmm/${x.name} of=${dev} bs=65536 seek=${x.offset} oflag=seek_bytes,direct conv=notrunc,fsync 2>/dev/null`).join('\n');
  return `
set -e
A=; B=
for d in /sys/block/vd*; do
  s=$(cat $d/serial)
  echo "disk-$(basename $d)=$s:$(cat $d/size)"
  [ "$s" = qcow-raw-base ] && A=/dev/$(basename $d)
  [ "$s" = qcow-qcow-base ] && B=/dev/$(basename $d)
done
[ -n "$A" ] && [ -n "$B" ] || { echo "serials not found"; exit 10; }
echo "t-start=$(cut -d' ' -f1 /proc/uptime)"
echo "base-read-a=$(dd if=$A bs=1M count=${BASE_SIZE / MiB} iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1)"
for D in $A $B; do
${w('$D')}
if blkdiscard -o ${DISCARD.offset} -l ${DISCARD.length} $D; then echo "discard-\${D#/dev/}=ok"; else echo "discard-\${D#/dev/}=failed"; fi
done
sync
echo "t-written=$(cut -d' ' -f1 /proc/uptime)"
echo 3 > /proc/sys/vm/drop_caches
echo "read-a=$(dd if=$A bs=1M iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1)"
echo "read-b=$(dd if=$B bs=1M iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1)"
echo "t-end=$(cut -d' ' -f1 /proc/uptime)"
echo done=1
`;
}

function result(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) m.set(line.slice(0, i).trim(), line.slice(i + 1).trim());
  }
  return m;
}

describe('qcow2 disks with backing files in a Linux guest (linux tier)', function () {
  this.timeout(900_000);
  let kit: GuestKit;
  let qemuImg: string;
  let dir: string;
  let baseRaw: string, baseQcow: string, overA: string, overB: string;
  let base: Buffer;
  let baseQcowSha: string;
  const payloads = new Map<string, Buffer>();
  let expected: Buffer;

  before(async function () {
    if (!process.env.TSVMM_LINUX && !process.env.TSVMM_GUESTKIT_DIR) {
      skipUnlessCi(this, 'Linux does not boot here (the tier runner sets TSVMM_GUESTKIT_DIR or TSVMM_LINUX where it does)');
    }
    const q = which('qemu-img');
    if (!q) skipUnlessCi(this, 'qemu-img is not installed (Debian qemu-utils; the sandbox carries the host\'s)');
    qemuImg = q!;
    kit = await guestKit({ log: () => {} });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qcow-linux-'));
    baseRaw = path.join(dir, 'base.raw');
    baseQcow = path.join(dir, 'base.qcow2');
    overA = path.join(dir, 'over-a.qcow2');
    overB = path.join(dir, 'over-b.qcow2');
    const img = (...args: string[]) => execFileSync(qemuImg, args, { cwd: dir, timeout: 120_000, stdio: ['ignore', 'pipe', 'pipe'] });
    img('create', '-q', '-f', 'raw', baseRaw, String(BASE_SIZE));
    base = basePattern();
    const fd = fs.openSync(baseRaw, 'r+');
    try { fs.writeSync(fd, base, 0, base.length, 0); } finally { fs.closeSync(fd); }
    img('convert', '-q', '-f', 'raw', '-O', 'qcow2', baseRaw, baseQcow);
    baseQcowSha = sha(fs.readFileSync(baseQcow));
    // relative backing names, as people write them; the plugin resolves them beside the overlay
    img('create', '-q', '-f', 'qcow2', '-b', 'base.raw', '-F', 'raw', overA, String(DISK_SIZE));
    img('create', '-q', '-f', 'qcow2', '-o', 'cluster_size=16384', '-b', 'base.qcow2', '-F', 'qcow2', overB, String(DISK_SIZE));
    expected = Buffer.alloc(DISK_SIZE);
    base.copy(expected);
    for (const w of WRITES) {
      const data = randomBytes(w.length);
      payloads.set(w.name, data);
      data.copy(expected, w.offset);
    }
    expected.fill(0, DISCARD.offset, DISCARD.offset + DISCARD.length);
  });
  after(() => { if (dir) fs.rmSync(dir, { recursive: true, force: true }); });

  async function boot(): Promise<{ out: Map<string, string>; console: string; exitCode?: number; vm: RunResult }> {
    const root = repoRoot();
    const micro = parseYaml(fs.readFileSync(path.join(root, 'hosts', 'micro.yaml'), 'utf8')) as {
      boot: Record<string, unknown>; plugins: { name: string; id?: string; config?: unknown }[];
    };
    const consoleFile = path.join(dir, 'console.txt');
    const extra: Record<string, Uint8Array> = {};
    for (const [name, data] of payloads) extra[`tsvmm/${name}`] = data;
    micro.boot.kernel = kit.vmlinux;
    micro.boot.initramfs = writeInitramfsWithScript(kit, guestScript(), path.join(dir, 'initramfs'), extra);
    micro.boot.cmdline = `quiet ${String(micro.boot.cmdline)}`;
    for (const p of micro.plugins) if (p.name === 'serial') p.config = { port: 'COM1', console: { kind: 'file', path: consoleFile } };
    micro.plugins.push(
      { name: 'qcow' },
      { name: 'virtio-blk', id: 'vda', config: { path: overA, format: 'qcow2', allowBacking: true, serial: 'qcow-raw-base' } },
      { name: 'virtio-blk', id: 'vdb', config: { path: overB, format: 'qcow2', allowBacking: true, serial: 'qcow-qcow-base' } },
    );
    const vm = await runVm({ config: micro, baseDir: path.join(root, 'hosts') }, { signals: [] });
    const text = fs.readFileSync(consoleFile, 'utf8');
    const g = parseGuestOutput(text);
    if (!g.resultComplete) throw new Error(`guest script did not finish (VM stopped: ${vm.reason.kind}); console tail:\n${text.slice(-4000)}`);
    return { out: result(g.result ?? ''), console: text, exitCode: g.exitCode, vm };
  }

  let out: Map<string, string>;
  it('boots with two qcow2 overlays, writes, discards, syncs and powers off', async () => {
    const r = await boot();
    expect(r.exitCode, r.console.slice(-3000)).to.equal(0);
    expect(r.out.get('done')).to.equal('1');
    expect(r.vm.reason.kind).to.equal('poweroff');
    out = r.out;
    console.log(`      guest uptime (s): script start ${out.get('t-start')}, written ${out.get('t-written')}, end ${out.get('t-end')}`);
  });

  it('the guest sees the virtual size and reads the backing file through the overlay', function () {
    if (!out) this.skip();
    const disks = [...out.entries()].filter(([k]) => k.startsWith('disk-')).map(([, v]) => v).sort();
    expect(disks).to.deep.equal([`qcow-qcow-base:${DISK_SIZE / 512}`, `qcow-raw-base:${DISK_SIZE / 512}`]);
    expect(out.get('base-read-a')).to.equal(md5(base));
    expect(out.get('discard-vda')).to.equal('ok');
    expect(out.get('discard-vdb')).to.equal('ok');
  });

  for (const [label, which_] of [['raw', 'a'], ['qcow2', 'b']] as const) {
    it(`overlay over a ${label} base: convert -O raw gives the expected bytes and qemu-img check is clean`, function () {
      if (!out) this.skip();
      const over = which_ === 'a' ? overA : overB;
      const flat = path.join(dir, `flat-${which_}.raw`);
      execFileSync(qemuImg, ['convert', '-f', 'qcow2', '-O', 'raw', over, flat], { timeout: 120_000, stdio: ['ignore', 'pipe', 'pipe'] });
      const got = fs.readFileSync(flat);
      expect(got.length).to.equal(DISK_SIZE);
      if (!got.equals(expected)) {
        let i = 0;
        while (got[i] === expected[i]) i++;
        expect.fail(`first difference at byte ${i} (0x${i.toString(16)})`);
      }
      expect(out.get(`read-${which_}`), 'the guest read back the same bytes').to.equal(md5(expected));
      // after a clean poweroff the image is consistent: no leaks (reserved clusters released), no corruption
      const check = spawnSync(qemuImg, ['check', over], { encoding: 'utf8', timeout: 120_000 });
      expect(check.status, (check.stdout + check.stderr).slice(0, 2000)).to.equal(0);
      expect(check.stdout).to.match(/No errors were found/);
    });
  }

  it('the base files are untouched', function () {
    if (!out) this.skip();
    expect(sha(fs.readFileSync(baseRaw))).to.equal(sha(base));
    expect(sha(fs.readFileSync(baseQcow))).to.equal(baseQcowSha);
  });
});
