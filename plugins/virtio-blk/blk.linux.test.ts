/**
 * Linux tier: ONE boot of the guest kit kernel in the micro VMM (hosts/micro.yaml) with 2 vCPUs,
 * the console on a unix socket (a line typed into it reaches the guest, after which the guest
 * prints everything below) and four virtio-blk disks; the guest script does all its I/O, powers
 * off, and the host side checks:
 *  1. random data written with dd + fsync lands byte-exact in the image (sha256 both sides);
 *  2. busybox mke2fs (busybox makes ext2, not ext4) + files + umount: the image passes
 *     `e2fsck -fn` on the host and `debugfs` reads back every file with the guest's checksum;
 *  3. the read-only disk refuses writes in the guest and its image is unchanged;
 *  4. blkdiscard (busybox) punches a hole in the host file (SEEK_DATA skips the range);
 *  5. GET_ID: /sys/block/vdX/serial is the configured serial, sizes match the images;
 *  6. multi-queue: vda and vdc have 2 queues, the guest sees 2 hardware queues each;
 *  7. concurrency: guestio stress on vdc, 4 threads x 8 requests in flight over both queues; the
 *     guest checks every read and the whole span afterwards, the host checks every block of the
 *     file and the digest of (block, version) against the guest's;
 *  8. WRITE_ZEROES: fallocate PUNCH_HOLE (unmap, no fallback) leaves a hole in the host file,
 *     ZERO_RANGE leaves zeros;
 *  9. rate limiting: vdd is limited to 4 MiB/s; the guest measures its own read rate.
 * Runs where Linux can boot (inside the sandbox the runner sets TSVMM_GUESTKIT_DIR; or TSVMM_LINUX=1).
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { guestKit, type GuestKit, checkStressImage } from '../../test/harness/guest-kit.js';
import { koffi } from '../../core/native/libc.js';
import { bootWithConsole, CONSOLE_INPUT_STEP, TYPED, type GuestRun } from '../../test/guest/guest-vm.js';
import { skipUnlessCi } from '../../test/setup/environment.js';

const MiB = 1 << 20;
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** A host tool from e2fsprogs, or undefined. */
function tool(name: string): string | undefined {
  for (const d of ['/sbin', '/usr/sbin', '/bin', '/usr/bin'])
    if (fs.existsSync(path.join(d, name))) return path.join(d, name);
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
  } finally {
    fs.closeSync(fd);
  }
}

function readAt(file: string, offset: number, length: number): Buffer {
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.alloc(length);
    expect(fs.readSync(fd, buf, 0, length, offset)).to.equal(length);
    return buf;
  } finally {
    fs.closeSync(fd);
  }
}

/*
 * The guest finds its disks by serial (the probe order of the ACPI nodes is not the test's
 * business), so GET_ID is what routes every later step: a wrong serial fails them all.
 */
const STRESS = { spanMiB: 32, threads: 4, depth: 8, ops: 3000, seed: 0x5eed5n };
const RATE = { bytesPerSec: 4 * MiB, bucket: 2 * MiB, readMiB: 16 };
const GUEST_SCRIPT = `
set -e
${CONSOLE_INPUT_STEP}
echo "nproc=$(nproc)"
A=; B=; C=; D=
for d in /sys/block/vd*; do
  s=$(cat $d/serial)
  echo "disk-$(basename $d)=$s:$(cat $d/size):$(cat $d/ro)"
  echo "mq-$s=$(ls $d/mq | wc -l)"
  [ "$s" = tsvmm-disk-a ] && A=/dev/$(basename $d)
  [ "$s" = tsvmm-disk-b ] && B=/dev/$(basename $d)
  [ "$s" = tsvmm-stress ] && C=/dev/$(basename $d)
  [ "$s" = tsvmm-limited ] && D=/dev/$(basename $d)
done
[ -n "$A" ] && [ -n "$B" ] && [ -n "$C" ] && [ -n "$D" ] || { echo "serials not found"; exit 10; }
echo "t-start=$(cut -d' ' -f1 /proc/uptime)"
# 7. many requests in flight on both queues of vdc
guestio stress $C ${STRESS.spanMiB} ${STRESS.threads} ${STRESS.depth} ${STRESS.ops} ${STRESS.seed}
echo "t-stress=$(cut -d' ' -f1 /proc/uptime)"
# 8. WRITE_ZEROES on data at 36-40 MiB (unmap) and 42-44 MiB (keep)
echo "wz-max=$(cat /sys/block/\${C#/dev/}/queue/write_zeroes_max_bytes)"
dd if=/dev/urandom of=$C bs=1M seek=36 count=8 oflag=direct conv=fsync 2>/dev/null
guestio zero $C $((36 << 20)) $((4 << 20)) unmap
guestio zero $C $((42 << 20)) $((2 << 20)) keep
# 9. the rate-limited disk
guestio readrate $D ${RATE.readMiB}
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
  let diskA: string, diskB: string, diskC: string, diskD: string;
  let bContent: Buffer;

  before(async function () {
    if (!process.env.TSVMM_LINUX && !process.env.TSVMM_GUESTKIT_DIR) {
      skipUnlessCi(
        this,
        'Linux does not boot here (the tier runner sets TSVMM_GUESTKIT_DIR or TSVMM_LINUX where it does)',
      );
    }
    kit = await guestKit({ log: () => {} });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'blk-linux-'));
    diskA = path.join(dir, 'a.img');
    diskB = path.join(dir, 'b.img');
    diskC = path.join(dir, 'c.img');
    diskD = path.join(dir, 'd.img');
    for (const [f, size] of [
      [diskA, 64 * MiB],
      [diskC, 48 * MiB],
      [diskD, 16 * MiB],
    ] as const) {
      fs.writeFileSync(f, Buffer.alloc(0));
      fs.truncateSync(f, size); // sparse
    }
    bContent = randomBytes(4 * MiB);
    fs.writeFileSync(diskB, bContent);
  });
  after(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  let first: Map<string, string>;
  let run: GuestRun;
  it('boots with 2 vCPUs and four disks, answers console input, runs the I/O script to the end and powers off', async () => {
    run = await bootWithConsole({
      kit,
      dir,
      name: 'blk',
      script: GUEST_SCRIPT,
      vcpus: 2,
      plugins: [
        { name: 'raw-disk' },
        { name: 'virtio-blk', id: 'vda', config: { path: diskA, serial: 'tsvmm-disk-a', numQueues: 2 } },
        { name: 'virtio-blk', id: 'vdb', config: { path: diskB, serial: 'tsvmm-disk-b', readOnly: true } },
        { name: 'virtio-blk', id: 'vdc', config: { path: diskC, serial: 'tsvmm-stress', numQueues: 2 } },
        {
          name: 'virtio-blk',
          id: 'vdd',
          config: {
            path: diskD,
            serial: 'tsvmm-limited',
            rateLimiter: { bandwidth: { size: RATE.bucket, refillTimeMs: (1000 * RATE.bucket) / RATE.bytesPerSec } },
          },
        },
      ],
    });
    first = run.result;
    console.log(
      `      boot to poweroff: ${run.seconds.toFixed(1)} s; guest uptime (s) at each step: ` +
        [...first]
          .filter(([k]) => k.startsWith('t-'))
          .map(([k, v]) => `${k.slice(2)} ${v}`)
          .join(', '),
    );
    expect(run.out.exitCode, run.console.slice(-3000)).to.equal(0);
    expect(first.get('console-input'), run.console.slice(-5000)).to.equal(TYPED);
    expect(first.get('nproc')).to.equal('2');
    expect(first.get('done'), run.console.slice(-5000)).to.equal('1');
    expect(run.vm.reason.kind).to.equal('poweroff');
  });

  it('GET_ID: the guest sees each disk with its serial, size and read-only flag', function () {
    if (!first) this.skip();
    const disks = [...first.entries()]
      .filter(([k]) => k.startsWith('disk-'))
      .map(([, v]) => v)
      .sort();
    expect(disks).to.deep.equal([
      `tsvmm-disk-a:${(64 * MiB) / 512}:0`,
      `tsvmm-disk-b:${(4 * MiB) / 512}:1`,
      `tsvmm-limited:${(16 * MiB) / 512}:0`,
      `tsvmm-stress:${(48 * MiB) / 512}:0`,
    ]);
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

  it("the ext2 filesystem the guest made is clean (host e2fsck -fn) and holds the guest's files (host debugfs)", function () {
    if (!first) this.skip();
    const e2fsck = tool('e2fsck');
    const debugfs = tool('debugfs');
    if (!e2fsck || !debugfs) skipUnlessCi(this, 'e2fsck/debugfs are not installed (Debian e2fsprogs)');
    // e2fsck exits 0 only when nothing needed fixing; -n never writes. The filesystem covers the
    // first 16 MiB; e2fsck reads its size from the superblock.
    const out = execFileSync(e2fsck, ['-fn', diskA], {
      encoding: 'utf8',
      timeout: 60_000,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    expect(out).to.match(/\d+\/\d+ files .*\d+\/\d+ blocks/);
    const files = [...first.entries()].filter(([k]) => k.startsWith('file:')).map(([k, v]) => [k.slice(5), v] as const);
    expect(files).to.have.length(17);
    for (const [name, hash] of files) {
      const data = execFileSync(debugfs, ['-R', `cat ${name}`, diskA], {
        timeout: 60_000,
        stdio: ['ignore', 'pipe', 'ignore'],
        maxBuffer: 8 * MiB,
      });
      expect(sha(data), name).to.equal(hash);
    }
  });

  it('multi-queue: the guest drives 2 hardware queues on each disk configured with 2', function () {
    if (!first) this.skip();
    expect(first.get('mq-tsvmm-disk-a')).to.equal('2');
    expect(first.get('mq-tsvmm-stress')).to.equal('2');
    expect(first.get('mq-tsvmm-disk-b')).to.equal('1');
  });

  it('many requests in flight (4 threads x 8, 2 queues): every block in the file is the last version the guest wrote', function () {
    if (!first) this.skip();
    expect(first.get('stress-errors'), 'guest read-back errors').to.equal('0');
    expect(first.get('stress-verify-bad'), 'guest verify pass').to.equal('0');
    expect(Number(first.get('stress-writes'))).to.be.greaterThan(STRESS.ops / 2);
    const host = checkStressImage(
      fs.readFileSync(diskC).subarray(0, STRESS.spanMiB * MiB),
      STRESS.spanMiB * MiB,
      STRESS.seed,
    );
    console.log(
      `      stress: ${first.get('stress-writes')} writes + ${first.get('stress-reads')} reads in ${(Number(first.get('stress-us')) / 1e6).toFixed(1)} s, ${host.blocks} blocks written`,
    );
    expect(host.bad, `blocks neither zero nor a valid version: ${host.badList.join(', ')}`).to.equal(0);
    expect(host.blocks).to.equal(Number(first.get('stress-blocks')));
    expect(host.digest).to.equal(first.get('stress-digest'));
  });

  it('WRITE_ZEROES: with unmap the range becomes a hole in the host file, without it the range reads zeros', function () {
    if (!first) this.skip();
    expect(Number(first.get('wz-max'))).to.be.greaterThan(0);
    expect(first.get('zero-unmap')).to.equal('ok');
    expect(first.get('zero-keep')).to.equal('ok');
    const next = nextData(diskC, 36 * MiB);
    expect(next === -1 || next >= 40 * MiB, `data found at ${next}`).to.equal(true);
    expect(readAt(diskC, 36 * MiB, 4 * MiB).every((v) => v === 0)).to.equal(true);
    expect(readAt(diskC, 42 * MiB, 2 * MiB).every((v) => v === 0)).to.equal(true);
    // the data around the zeroed ranges is still there
    expect(readAt(diskC, 40 * MiB, 2 * MiB).some((v) => v !== 0)).to.equal(true);
  });

  it('rate limiting: the guest reads the limited disk no faster than the limit allows (and not starved)', function () {
    if (!first) this.skip();
    const bytes = Number(first.get('rate-bytes'));
    const secs = Number(first.get('rate-us')) / 1e6;
    const rate = bytes / secs;
    console.log(
      `      rate-limited read: ${(bytes / MiB).toFixed(0)} MiB in ${secs.toFixed(2)} s = ${(rate / MiB).toFixed(2)} MiB/s (limit ${RATE.bytesPerSec / MiB} MiB/s, bucket ${RATE.bucket / MiB} MiB)`,
    );
    expect(bytes).to.equal(RATE.readMiB * MiB);
    // the bucket starts full: at best the rest takes (bytes - bucket) / limit; 10% for clock granularity
    expect(secs).to.be.at.least((0.9 * (bytes - RATE.bucket)) / RATE.bytesPerSec);
    // generous lower bound: the limiter lets the guest have at least a quarter of the limit
    expect(rate).to.be.at.least(RATE.bytesPerSec / 4);
  });
});
