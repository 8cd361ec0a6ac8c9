/**
 * Linux tier: ONE boot of the guest kit kernel in the micro VMM (hosts/micro.yaml) with two
 * virtio-blk disks; the guest script does all its I/O, powers off, and the host side checks:
 *  1. random data written with dd + fsync lands byte-exact in the image (sha256 both sides);
 *  2. busybox mke2fs (busybox makes ext2, not ext4) + files + umount: the image passes
 *     `e2fsck -fn` on the host and `debugfs` reads back every file with the guest's checksum;
 *  3. the read-only disk refuses writes in the guest and its image is unchanged;
 *  4. blkdiscard (busybox) punches a hole in the host file (SEEK_DATA skips the range);
 *  5. GET_ID: /sys/block/vdX/serial is the configured serial, sizes match the images.
 * Runs where Linux can boot (inside the sandbox the runner sets TSVMM_GUESTKIT_DIR; or TSVMM_LINUX=1).
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { guestKit, parseGuestOutput, writeInitramfsWithScript, type GuestKit } from '../../hosts/guestkit/index.js';
import { runVm, type RunResult } from '../../core/vmm/run.js';
import { koffi } from '../../core/native/libc.js';
import { skipUnlessCi } from '../../test/setup/environment.js';

const MiB = 1 << 20;
const here = path.dirname(fileURLToPath(import.meta.url));
/** Source tree root (this file runs from <out>/plugins/virtio-blk/). */
function repoRoot(): string {
  for (let d = here; d !== path.dirname(d); d = path.dirname(d)) {
    if (fs.existsSync(path.join(d, 'hosts', 'micro.yaml'))) return d;
  }
  throw new Error('cannot find hosts/micro.yaml above ' + here);
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** A host tool from e2fsprogs, or undefined. */
function tool(name: string): string | undefined {
  for (const d of ['/sbin', '/usr/sbin', '/bin', '/usr/bin']) if (fs.existsSync(path.join(d, name))) return path.join(d, name);
  return undefined;
}

/** Offset of the first data at or after `from` (SEEK_DATA), or -1 when only a hole follows. */
function nextData(file: string, from: number): number {
  const lib = koffi.load('libc.so.6');
  const lseek = lib.func('int64_t lseek64(int fd, int64_t off, int whence)');
  const fd = fs.openSync(file, 'r');
  try {
    // SAFETY: fd owned here, closed below; SEEK_DATA = 3; -1 (ENXIO) when no data follows.
    return Number(lseek(fd, from, 3));
  } finally { fs.closeSync(fd); }
}

function readAt(file: string, offset: number, length: number): Buffer {
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.alloc(length);
    expect(fs.readSync(fd, buf, 0, length, offset)).to.equal(length);
    return buf;
  } finally { fs.closeSync(fd); }
}

/** key=value lines of the guest's result. */
function result(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) m.set(line.slice(0, i).trim(), line.slice(i + 1).trim());
  }
  return m;
}

/*
 * The guest finds its disks by serial (the probe order of the ACPI nodes is not the test's
 * business), so GET_ID is what routes every later step: a wrong serial fails them all.
 */
const GUEST_SCRIPT = `
set -e
A=; B=
for d in /sys/block/vd*; do
  s=$(cat $d/serial)
  echo "disk-$(basename $d)=$s:$(cat $d/size):$(cat $d/ro)"
  [ "$s" = tsvmm-disk-a ] && A=/dev/$(basename $d)
  [ "$s" = tsvmm-disk-b ] && B=/dev/$(basename $d)
done
[ -n "$A" ] && [ -n "$B" ] || { echo "serials not found"; exit 10; }
echo "t-start=$(cut -d' ' -f1 /proc/uptime)"
echo "discard-max=$(cat /sys/block/\${A#/dev/}/queue/discard_max_bytes)"
# 1. random data at 40 MiB, durable before poweroff
dd if=/dev/urandom of=/tmp/rand bs=1M count=2 2>/dev/null
echo "rand-sha=$(sha256sum /tmp/rand | cut -d' ' -f1)"
dd if=/tmp/rand of=$A bs=1M seek=40 conv=fsync 2>/dev/null
echo 3 > /proc/sys/vm/drop_caches
echo "readback-sha=$(dd if=$A bs=1M skip=40 count=2 iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)"
echo "t-data=$(cut -d' ' -f1 /proc/uptime)"
# 4. data at 48 MiB, then discarded
dd if=/dev/urandom of=$A bs=1M seek=48 count=4 conv=fsync 2>/dev/null
if blkdiscard -o $((48 << 20)) -l $((4 << 20)) $A; then echo discard=ok; else echo discard=failed; fi
echo "t-discard=$(cut -d' ' -f1 /proc/uptime)"
# 3. the read-only disk
if dd if=/dev/zero of=$B bs=4096 count=1 oflag=direct conv=fsync 2>/dev/null; then echo ro-write=accepted; else echo ro-write=refused; fi
echo "vdb-sha=$(dd if=$B bs=1M iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)"
echo "t-ro=$(cut -d' ' -f1 /proc/uptime)"
# 2. ext2 in the first 16 MiB
mke2fs -F $A 16384 >/dev/null
mkdir -p /mnt/a
echo "t-mkfs=$(cut -d' ' -f1 /proc/uptime)"
mount -t ext2 $A /mnt/a 2>/dev/null || mount -t ext4 $A /mnt/a
i=0
while [ $i -lt 16 ]; do dd if=/dev/urandom of=/mnt/a/f$i bs=4096 count=$((i * 3 + 1)) 2>/dev/null; i=$((i + 1)); done
mkdir /mnt/a/dir && echo hello > /mnt/a/dir/greeting
echo "t-files=$(cut -d' ' -f1 /proc/uptime)"
cd /mnt/a
for f in f* dir/greeting; do echo "file:/$f=$(sha256sum $f | cut -d' ' -f1)"; done
cd /
umount /mnt/a
sync
echo "t-end=$(cut -d' ' -f1 /proc/uptime)"
echo done=1
`;

describe('virtio-blk in a Linux guest (linux tier)', function () {
  this.timeout(900_000);
  let kit: GuestKit;
  let dir: string;
  let diskA: string, diskB: string;
  let bContent: Buffer;

  before(async function () {
    if (!process.env.TSVMM_LINUX && !process.env.TSVMM_GUESTKIT_DIR) {
      skipUnlessCi(this, 'Linux does not boot here (the tier runner sets TSVMM_GUESTKIT_DIR or TSVMM_LINUX where it does)');
    }
    kit = await guestKit({ log: () => {} });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'blk-linux-'));
    diskA = path.join(dir, 'a.img');
    diskB = path.join(dir, 'b.img');
    fs.writeFileSync(diskA, Buffer.alloc(0));
    fs.truncateSync(diskA, 64 * MiB); // sparse
    bContent = randomBytes(4 * MiB);
    fs.writeFileSync(diskB, bContent);
  });
  after(() => { if (dir) fs.rmSync(dir, { recursive: true, force: true }); });

  async function boot(script: string, name: string): Promise<{ out: Map<string, string>; console: string; exitCode?: number; vm: RunResult }> {
    const root = repoRoot();
    const micro = parseYaml(fs.readFileSync(path.join(root, 'hosts', 'micro.yaml'), 'utf8')) as {
      boot: Record<string, unknown>; plugins: { name: string; id?: string; config?: unknown }[];
    };
    const consoleFile = path.join(dir, `${name}.console`);
    micro.boot.kernel = kit.vmlinux;
    micro.boot.initramfs = writeInitramfsWithScript(kit, script, path.join(dir, `${name}.initramfs`));
    micro.boot.cmdline = `quiet ${String(micro.boot.cmdline)}`;
    for (const p of micro.plugins) if (p.name === 'serial') p.config = { port: 'COM1', console: { kind: 'file', path: consoleFile } };
    micro.plugins.push(
      { name: 'raw-disk' },
      { name: 'virtio-blk', id: 'vda', config: { path: diskA, serial: 'tsvmm-disk-a' } },
      { name: 'virtio-blk', id: 'vdb', config: { path: diskB, serial: 'tsvmm-disk-b', readOnly: true } },
    );
    const vm = await runVm({ config: micro, baseDir: path.join(root, 'hosts') }, { signals: [] });
    const text = fs.readFileSync(consoleFile, 'utf8');
    const g = parseGuestOutput(text);
    if (!g.resultComplete) throw new Error(`guest script did not finish (VM stopped: ${vm.reason.kind}); console tail:\n${text.slice(-4000)}`);
    return { out: result(g.result ?? ''), console: text, exitCode: g.exitCode, vm };
  }

  let first: Map<string, string>;
  it('boots with two disks, runs the I/O script to the end and powers off', async () => {
    const r = await boot(GUEST_SCRIPT, 'blk');
    expect(r.exitCode, r.console.slice(-3000)).to.equal(0);
    expect(r.out.get('done')).to.equal('1');
    expect(r.vm.reason.kind).to.equal('poweroff');
    first = r.out;
    console.log('      guest uptime (s) at each step: ' + [...first].filter(([k]) => k.startsWith('t-')).map(([k, v]) => `${k.slice(2)} ${v}`).join(', '));
  });

  it('GET_ID: the guest sees each disk with its serial, size and read-only flag', function () {
    if (!first) this.skip();
    const disks = [...first.entries()].filter(([k]) => k.startsWith('disk-')).map(([, v]) => v).sort();
    expect(disks).to.deep.equal([`tsvmm-disk-a:${(64 * MiB) / 512}:0`, `tsvmm-disk-b:${(4 * MiB) / 512}:1`]);
  });

  it('data written and synced in the guest is byte-exact in the host file', function () {
    if (!first) this.skip();
    expect(first.get('rand-sha')).to.match(/^[0-9a-f]{64}$/);
    expect(first.get('readback-sha')).to.equal(first.get('rand-sha'));
    expect(sha(readAt(diskA, 40 * MiB, 2 * MiB))).to.equal(first.get('rand-sha'));
  });

  it('the read-only disk refuses writes and is unchanged', function () {
    if (!first) this.skip();
    expect(first.get('ro-write')).to.equal('refused');
    expect(first.get('vdb-sha')).to.equal(sha(bContent));
    expect(sha(fs.readFileSync(diskB))).to.equal(sha(bContent));
  });

  it('DISCARD punches a hole in the host file', function () {
    if (!first) this.skip();
    expect(Number(first.get('discard-max'))).to.be.greaterThan(0);
    expect(first.get('discard')).to.equal('ok');
    const next = nextData(diskA, 48 * MiB);
    expect(next === -1 || next >= 52 * MiB, `data found at ${next}`).to.equal(true);
    expect(readAt(diskA, 48 * MiB, 4 * MiB).every((v) => v === 0)).to.equal(true);
  });

  it('the ext2 filesystem the guest made is clean (host e2fsck -fn) and holds the guest\'s files (host debugfs)', function () {
    if (!first) this.skip();
    const e2fsck = tool('e2fsck');
    const debugfs = tool('debugfs');
    if (!e2fsck || !debugfs) skipUnlessCi(this, 'e2fsck/debugfs are not installed (Debian e2fsprogs)');
    // e2fsck exits 0 only when nothing needed fixing; -n never writes. The filesystem covers the
    // first 16 MiB; e2fsck reads its size from the superblock.
    const out = execFileSync(e2fsck, ['-fn', diskA], { encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe'] });
    expect(out).to.match(/\d+\/\d+ files .*\d+\/\d+ blocks/);
    const files = [...first.entries()].filter(([k]) => k.startsWith('file:')).map(([k, v]) => [k.slice(5), v] as const);
    expect(files).to.have.length(17);
    for (const [name, hash] of files) {
      const data = execFileSync(debugfs, ['-R', `cat ${name}`, diskA], { timeout: 60_000, stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 8 * MiB });
      expect(sha(data), name).to.equal(hash);
    }
  });
});
