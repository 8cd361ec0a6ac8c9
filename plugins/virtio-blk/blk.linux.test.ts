/**
 * Linux tier: boots the guest kit kernel in the micro VMM (hosts/micro.yaml) with two
 * virtio-blk disks and checks, from the host side, what the guest did:
 *  1. random data written with dd + fsync lands byte-exact in the image (sha256 both sides);
 *  2. busybox mke2fs (busybox makes ext2, not ext4) + files + umount: the image passes
 *     `e2fsck -fn` on the host (when e2fsck exists there) and a second boot reads the same files;
 *  3. the read-only disk refuses writes in the guest and its image is unchanged;
 *  4. blkdiscard (busybox) punches a hole in the host file (SEEK_DATA skips the range);
 *  5. GET_ID: /sys/block/vdX/serial is the configured serial.
 * Runs where Linux can boot (the nested sandbox; set TSVMM_LINUX=1 or TSVMM_GUESTKIT_DIR).
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
import { runVm } from '../../core/vmm/run.js';
import { koffi } from '../../core/native/libc.js';

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

/** Offset of the first data at or after `from` (SEEK_DATA), or -1 when only a hole follows. */
function nextData(file: string, from: number): number {
  const lib = koffi.load('libc.so.6');
  const lseek = lib.func('int64_t lseek64(int fd, int64_t off, int whence)');
  const fd = fs.openSync(file, 'r');
  try {
    // SAFETY: fd owned here, closed below; SEEK_DATA = 3.
    return Number(lseek(fd, from, 3));
  } finally { fs.closeSync(fd); }
}

function result(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) m.set(line.slice(0, i).trim(), line.slice(i + 1).trim());
  }
  return m;
}

const FIRST_BOOT = `
set -e
echo "serial-a=$(cat /sys/block/vda/serial)"
echo "serial-b=$(cat /sys/block/vdb/serial)"
echo "ro-b=$(cat /sys/block/vdb/ro)"
echo "discard-max=$(cat /sys/block/vda/queue/discard_max_bytes)"
# 1. random data at 40 MiB, durable before poweroff
dd if=/dev/urandom of=/tmp/rand bs=1M count=4 2>/dev/null
echo "rand-sha=$(sha256sum /tmp/rand | cut -d' ' -f1)"
dd if=/tmp/rand of=/dev/vda bs=1M seek=40 conv=fsync 2>/dev/null
echo 3 > /proc/sys/vm/drop_caches
echo "readback-sha=$(dd if=/dev/vda bs=1M skip=40 count=4 2>/dev/null | sha256sum | cut -d' ' -f1)"
# 4. data at 48 MiB, then discarded
dd if=/dev/urandom of=/dev/vda bs=1M seek=48 count=8 conv=fsync 2>/dev/null
if blkdiscard -o $((48 << 20)) -l $((8 << 20)) /dev/vda; then echo discard=ok; else echo discard=failed; fi
# 3. the read-only disk
if dd if=/dev/zero of=/dev/vdb bs=4096 count=1 oflag=direct conv=fsync 2>/dev/null; then echo ro-write=accepted; else echo ro-write=refused; fi
echo "vdb-sha=$(dd if=/dev/vdb bs=1M 2>/dev/null | sha256sum | cut -d' ' -f1)"
# 2. ext2 in the first 32 MiB
mke2fs -F /dev/vda 32768 >/dev/null
mkdir -p /mnt/a
mount -t ext2 /dev/vda /mnt/a 2>/dev/null || mount -t ext4 /dev/vda /mnt/a
i=0
while [ $i -lt 16 ]; do dd if=/dev/urandom of=/mnt/a/f$i bs=4096 count=$((i * 7 + 1)) 2>/dev/null; i=$((i + 1)); done
mkdir /mnt/a/dir && echo hello > /mnt/a/dir/greeting
echo "files-sha=$(cat /mnt/a/f* /mnt/a/dir/greeting | sha256sum | cut -d' ' -f1)"
umount /mnt/a
sync
echo done=1
`;

const SECOND_BOOT = `
set -e
mkdir -p /mnt/a
mount -t ext2 -o ro /dev/vda /mnt/a 2>/dev/null || mount -t ext4 -o ro /dev/vda /mnt/a
echo "files-sha=$(cat /mnt/a/f* /mnt/a/dir/greeting | sha256sum | cut -d' ' -f1)"
umount /mnt/a
echo done=1
`;

describe('virtio-blk in a Linux guest (linux tier)', function () {
  this.timeout(900_000);
  let kit: GuestKit;
  let dir: string;
  let diskA: string, diskB: string;
  let bContent: Buffer;

  before(async function () {
    if (!process.env.TSVMM_LINUX && !process.env.TSVMM_GUESTKIT_DIR) this.skip();
    kit = await guestKit({ log: () => {} });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'blk-linux-'));
    diskA = path.join(dir, 'a.img');
    diskB = path.join(dir, 'b.img');
    fs.writeFileSync(diskA, Buffer.alloc(0));
    fs.truncateSync(diskA, 64 * MiB); // sparse
    bContent = randomBytes(8 * MiB);
    fs.writeFileSync(diskB, bContent);
  });
  after(() => { if (dir) fs.rmSync(dir, { recursive: true, force: true }); });

  async function boot(script: string, name: string): Promise<{ out: Map<string, string>; console: string; exitCode?: number }> {
    const root = repoRoot();
    const micro = parseYaml(fs.readFileSync(path.join(root, 'hosts', 'micro.yaml'), 'utf8')) as {
      boot: Record<string, unknown>; plugins: { name: string; id?: string; config?: unknown }[];
    };
    const consoleFile = path.join(dir, `${name}.console`);
    micro.boot.kernel = kit.vmlinux;
    micro.boot.initramfs = writeInitramfsWithScript(kit, script, path.join(dir, `${name}.initramfs`));
    for (const p of micro.plugins) if (p.name === 'serial') p.config = { port: 'COM1', console: { kind: 'file', path: consoleFile } };
    micro.plugins.push(
      { name: 'raw-disk' },
      { name: 'virtio-blk', id: 'vda', config: { path: diskA, serial: 'tsvmm-disk-a' } },
      { name: 'virtio-blk', id: 'vdb', config: { path: diskB, serial: 'tsvmm-disk-b', readOnly: true } },
    );
    await runVm({ config: micro, baseDir: path.join(root, 'hosts') }, { signals: [] });
    const text = fs.readFileSync(consoleFile, 'utf8');
    const g = parseGuestOutput(text);
    if (!g.resultComplete) throw new Error(`guest script did not finish; console tail:\n${text.slice(-4000)}`);
    return { out: result(g.result ?? ''), console: text, exitCode: g.exitCode };
  }

  let first: Map<string, string>;
  it('boots with two disks and runs the I/O script to the end', async () => {
    const r = await boot(FIRST_BOOT, 'first');
    expect(r.exitCode, r.console.slice(-3000)).to.equal(0);
    expect(r.out.get('done')).to.equal('1');
    first = r.out;
  });

  it('GET_ID: the guest sees each disk\'s serial', function () {
    if (!first) this.skip();
    expect(first.get('serial-a')).to.equal('tsvmm-disk-a');
    expect(first.get('serial-b')).to.equal('tsvmm-disk-b');
  });

  it('data written and synced in the guest is byte-exact in the host file', function () {
    if (!first) this.skip();
    expect(first.get('readback-sha')).to.equal(first.get('rand-sha'));
    const fd = fs.openSync(diskA, 'r');
    const buf = Buffer.alloc(4 * MiB);
    fs.readSync(fd, buf, 0, buf.length, 40 * MiB);
    fs.closeSync(fd);
    expect(sha(buf)).to.equal(first.get('rand-sha'));
  });

  it('the read-only disk refuses writes and is unchanged', function () {
    if (!first) this.skip();
    expect(first.get('ro-b')).to.equal('1');
    expect(first.get('ro-write')).to.equal('refused');
    expect(first.get('vdb-sha')).to.equal(sha(bContent));
    expect(sha(fs.readFileSync(diskB))).to.equal(sha(bContent));
  });

  it('DISCARD punches a hole in the host file', function () {
    if (!first) this.skip();
    expect(Number(first.get('discard-max'))).to.be.greaterThan(0);
    expect(first.get('discard')).to.equal('ok');
    const next = nextData(diskA, 48 * MiB);
    expect(next === -1 || next >= 56 * MiB, `data found at ${next}`).to.equal(true);
    const fd = fs.openSync(diskA, 'r');
    const buf = Buffer.alloc(8 * MiB);
    fs.readSync(fd, buf, 0, buf.length, 48 * MiB);
    fs.closeSync(fd);
    expect(buf.every((v) => v === 0)).to.equal(true);
  });

  it('the ext2 filesystem the guest made is clean (host e2fsck -fn)', function () {
    if (!first) this.skip();
    let e2fsck: string | undefined;
    for (const p of ['/sbin/e2fsck', '/usr/sbin/e2fsck', '/bin/e2fsck', '/usr/bin/e2fsck']) if (fs.existsSync(p)) e2fsck = p;
    if (!e2fsck) this.skip(); // no e2fsprogs in this environment; the second boot still checks the files
    // The filesystem covers the first 32 MiB; e2fsck reads its size from the superblock.
    const out = execFileSync(e2fsck, ['-fn', diskA], { encoding: 'utf8', timeout: 60_000 });
    expect(out).to.match(/clean|files, .* blocks/);
  });

  it('a second boot mounts the filesystem and reads the same files', async function () {
    if (!first) this.skip();
    const r = await boot(SECOND_BOOT, 'second');
    expect(r.exitCode).to.equal(0);
    expect(r.out.get('files-sha')).to.equal(first.get('files-sha'));
  });
});
