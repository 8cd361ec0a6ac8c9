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
 * The same boot has 2 vCPUs and the console on a unix socket (a typed line reaches the guest), and
 * a third, fresh qcow2 disk with 2 queues: guestio stress keeps 4 x 8 requests in flight over it
 * (concurrent cluster allocation), then it discards 4 MiB and zeroes 2 MiB (WRITE_ZEROES with
 * unmap); the host checks every block, the digest, `qemu-img check` and `qemu-img map`.
 * Runs where Linux can boot (inside the sandbox the runner sets TSVMM_GUESTKIT_DIR; or TSVMM_LINUX=1);
 * needs qemu-img (the sandbox image carries it when the host has it).
 */
import { expect } from 'chai';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { guestKit, type GuestKit, checkStressImage } from '../../test/harness/guest-kit.js';
import { bootWithConsole, CONSOLE_INPUT_STEP, TYPED, type GuestRun } from '../../test/guest/guest-vm.js';
import { skipUnlessCi } from '../../test/setup/environment.js';

const KiB = 1024;
const MiB = 1 << 20;
const BASE_SIZE = 14 * MiB;
const DISK_SIZE = 20 * MiB;
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
/** The fresh disk (vdc): stress over the first 32 MiB, then discard 36-40 MiB and WRITE_ZEROES (unmap) 42-44 MiB. */
const STRESS = { spanMiB: 32, threads: 4, depth: 8, ops: 3000, seed: 0x9c0e2n };
const FRESH_SIZE = 48 * MiB;

function guestScript(): string {
  const w = (dev: string) =>
    WRITES.map(
      (x) =>
        `dd if=/tsvmm/${x.name} of=${dev} bs=65536 seek=${x.offset} oflag=seek_bytes,direct conv=notrunc,fsync 2>/dev/null`,
    ).join('\n');
  return `
set -e
${CONSOLE_INPUT_STEP}
echo "nproc=$(nproc)"
A=; B=; C=
for d in /sys/block/vd*; do
  s=$(cat $d/serial)
  echo "disk-$(basename $d)=$s:$(cat $d/size)"
  echo "mq-$s=$(ls $d/mq | wc -l)"
  [ "$s" = qcow-raw-base ] && A=/dev/$(basename $d)
  [ "$s" = qcow-qcow-base ] && B=/dev/$(basename $d)
  [ "$s" = qcow-fresh ] && C=/dev/$(basename $d)
done
[ -n "$A" ] && [ -n "$B" ] && [ -n "$C" ] || { echo "serials not found"; exit 10; }
echo "t-start=$(cut -d' ' -f1 /proc/uptime)"
guestio stress $C ${STRESS.spanMiB} ${STRESS.threads} ${STRESS.depth} ${STRESS.ops} ${STRESS.seed}
dd if=/dev/urandom of=$C bs=1M seek=36 count=8 oflag=direct conv=fsync 2>/dev/null
if blkdiscard -o $((36 << 20)) -l $((4 << 20)) $C; then echo discard-fresh=ok; else echo discard-fresh=failed; fi
guestio zero $C $((42 << 20)) $((2 << 20)) unmap
echo "t-stress=$(cut -d' ' -f1 /proc/uptime)"
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

describe('qcow2 disks with backing files in a Linux guest (linux tier)', function () {
  this.timeout(900_000);
  let kit: GuestKit;
  let qemuImg: string;
  let dir: string;
  let baseRaw: string, baseQcow: string, overA: string, overB: string, fresh: string;
  let base: Buffer;
  let baseQcowSha: string;
  const payloads = new Map<string, Buffer>();
  let expected: Buffer;

  before(async function () {
    if (!process.env.TSVMM_LINUX && !process.env.TSVMM_GUESTKIT_DIR) {
      skipUnlessCi(
        this,
        'Linux does not boot here (the tier runner sets TSVMM_GUESTKIT_DIR or TSVMM_LINUX where it does)',
      );
    }
    const q = which('qemu-img');
    if (!q) skipUnlessCi(this, "qemu-img is not installed (Debian qemu-utils; the sandbox carries the host's)");
    qemuImg = q!;
    kit = await guestKit({ log: () => {} });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qcow-linux-'));
    baseRaw = path.join(dir, 'base.raw');
    baseQcow = path.join(dir, 'base.qcow2');
    overA = path.join(dir, 'over-a.qcow2');
    overB = path.join(dir, 'over-b.qcow2');
    const img = (...args: string[]) =>
      execFileSync(qemuImg, args, { cwd: dir, timeout: 120_000, stdio: ['ignore', 'pipe', 'pipe'] });
    img('create', '-q', '-f', 'raw', baseRaw, String(BASE_SIZE));
    base = basePattern();
    const fd = fs.openSync(baseRaw, 'r+');
    try {
      fs.writeSync(fd, base, 0, base.length, 0);
    } finally {
      fs.closeSync(fd);
    }
    img('convert', '-q', '-f', 'raw', '-O', 'qcow2', baseRaw, baseQcow);
    baseQcowSha = sha(fs.readFileSync(baseQcow));
    // relative backing names, as people write them; the plugin resolves them beside the overlay
    img('create', '-q', '-f', 'qcow2', '-b', 'base.raw', '-F', 'raw', overA, String(DISK_SIZE));
    img(
      'create',
      '-q',
      '-f',
      'qcow2',
      '-o',
      'cluster_size=16384',
      '-b',
      'base.qcow2',
      '-F',
      'qcow2',
      overB,
      String(DISK_SIZE),
    );
    fresh = path.join(dir, 'fresh.qcow2');
    img('create', '-q', '-f', 'qcow2', fresh, String(FRESH_SIZE));
    expected = Buffer.alloc(DISK_SIZE);
    base.copy(expected);
    for (const w of WRITES) {
      const data = randomBytes(w.length);
      payloads.set(w.name, data);
      data.copy(expected, w.offset);
    }
    expected.fill(0, DISCARD.offset, DISCARD.offset + DISCARD.length);
  });
  after(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  let out: Map<string, string>;
  let run: GuestRun;
  it('boots with 2 vCPUs and three qcow2 disks, answers console input, writes, discards, syncs and powers off', async () => {
    const files: Record<string, Uint8Array> = {};
    for (const [name, data] of payloads) files[`tsvmm/${name}`] = data;
    run = await bootWithConsole({
      kit,
      dir,
      name: 'qcow',
      script: guestScript(),
      files,
      vcpus: 2,
      plugins: [
        { name: 'qcow' },
        {
          name: 'virtio-blk',
          id: 'vda',
          config: { path: overA, format: 'qcow2', allowBacking: true, serial: 'qcow-raw-base' },
        },
        {
          name: 'virtio-blk',
          id: 'vdb',
          config: { path: overB, format: 'qcow2', allowBacking: true, serial: 'qcow-qcow-base' },
        },
        { name: 'virtio-blk', id: 'vdc', config: { path: fresh, format: 'qcow2', serial: 'qcow-fresh', numQueues: 2 } },
      ],
    });
    out = run.result;
    console.log(
      `      boot to poweroff: ${run.seconds.toFixed(1)} s; guest uptime (s): script start ${out.get('t-start')}, ` +
        `stress ${out.get('t-stress')}, written ${out.get('t-written')}, end ${out.get('t-end')}`,
    );
    expect(run.out.exitCode, run.console.slice(-3000)).to.equal(0);
    expect(out.get('console-input'), run.console.slice(-5000)).to.equal(TYPED);
    expect(out.get('nproc')).to.equal('2');
    expect(out.get('done'), run.console.slice(-5000)).to.equal('1');
    expect(run.vm.reason.kind).to.equal('poweroff');
  });

  it('the guest sees the virtual size and reads the backing file through the overlay', function () {
    if (!out) this.skip();
    const disks = [...out.entries()]
      .filter(([k]) => k.startsWith('disk-'))
      .map(([, v]) => v)
      .sort();
    expect(disks).to.deep.equal([
      `qcow-fresh:${FRESH_SIZE / 512}`,
      `qcow-qcow-base:${DISK_SIZE / 512}`,
      `qcow-raw-base:${DISK_SIZE / 512}`,
    ]);
    expect(out.get('base-read-a')).to.equal(md5(base));
    expect(out.get('discard-vda')).to.equal('ok');
    expect(out.get('discard-vdb')).to.equal('ok');
  });

  for (const [label, which_] of [
    ['raw', 'a'],
    ['qcow2', 'b'],
  ] as const) {
    it(`overlay over a ${label} base: convert -O raw gives the expected bytes and qemu-img check is clean`, function () {
      if (!out) this.skip();
      const over = which_ === 'a' ? overA : overB;
      const flat = path.join(dir, `flat-${which_}.raw`);
      execFileSync(qemuImg, ['convert', '-f', 'qcow2', '-O', 'raw', over, flat], {
        timeout: 120_000,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
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

  it('a fresh qcow2 disk with 2 queues and 4 x 8 requests in flight: every block is the last version written, check clean', function () {
    if (!out) this.skip();
    expect(out.get('mq-qcow-fresh')).to.equal('2');
    expect(out.get('stress-errors'), 'guest read-back errors').to.equal('0');
    expect(out.get('stress-verify-bad'), 'guest verify pass').to.equal('0');
    const check = spawnSync(qemuImg, ['check', fresh], { encoding: 'utf8', timeout: 120_000 });
    expect(check.status, (check.stdout + check.stderr).slice(0, 2000)).to.equal(0);
    expect(check.stdout).to.match(/No errors were found/);
    const flat = path.join(dir, 'flat-fresh.raw');
    execFileSync(qemuImg, ['convert', '-f', 'qcow2', '-O', 'raw', fresh, flat], {
      timeout: 120_000,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const got = fs.readFileSync(flat);
    const host = checkStressImage(got.subarray(0, STRESS.spanMiB * MiB), STRESS.spanMiB * MiB, STRESS.seed);
    console.log(
      `      qcow2 stress: ${out.get('stress-writes')} writes + ${out.get('stress-reads')} reads in ${(Number(out.get('stress-us')) / 1e6).toFixed(1)} s, ${host.blocks} blocks`,
    );
    expect(host.bad, `blocks neither zero nor a valid version: ${host.badList.join(', ')}`).to.equal(0);
    expect(host.blocks).to.equal(Number(out.get('stress-blocks')));
    expect(host.digest).to.equal(out.get('stress-digest'));
  });

  it('discard and WRITE_ZEROES (unmap) on the fresh qcow2 disk free its clusters and read as zeros', function () {
    if (!out) this.skip();
    expect(out.get('discard-fresh')).to.equal('ok');
    expect(out.get('zero-unmap')).to.equal('ok');
    const flat = fs.readFileSync(path.join(dir, 'flat-fresh.raw'));
    expect(flat.subarray(36 * MiB, 40 * MiB).every((v) => v === 0)).to.equal(true);
    expect(flat.subarray(42 * MiB, 44 * MiB).every((v) => v === 0)).to.equal(true);
    expect(
      flat.subarray(40 * MiB, 42 * MiB).some((v) => v !== 0),
      'the data between the ranges stays',
    ).to.equal(true);
    // qemu-img map: no cluster of the freed ranges holds data any more
    const map = JSON.parse(
      execFileSync(qemuImg, ['map', '--output=json', fresh], { encoding: 'utf8', timeout: 60_000 }),
    ) as { start: number; length: number; data: boolean }[];
    const overlaps = (a: number, b: number) => map.filter((e) => e.data && e.start < b && e.start + e.length > a);
    expect(overlaps(36 * MiB, 40 * MiB), 'allocated extents in the discarded range').to.deep.equal([]);
    expect(overlaps(42 * MiB, 44 * MiB), 'allocated extents in the zeroed range').to.deep.equal([]);
    expect(overlaps(40 * MiB, 42 * MiB)).to.have.length.greaterThan(0);
  });
});
