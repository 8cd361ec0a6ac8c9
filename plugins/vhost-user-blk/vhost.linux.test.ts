/**
 * Linux tier: ONE boot of the guest kit kernel in the micro VMM with guest RAM in a memfd and three
 * back ends in other processes:
 *  1. vhost-user-blk served by qemu-storage-daemon: the guest writes random data, reads it back
 *     (O_DIRECT); sha256 in the guest, of its read-back and of the image file on the host agree;
 *  2. during a 32 MiB write (dd + fsync) the daemon is killed (SIGKILL, once it has written part of it) and
 *     started again on the same socket: the front end reconnects, the guest's dd completes, and the
 *     data read back in the guest and the image region on the host both match what the guest wrote;
 *  3. virtio-fs served by virtiofsd: the guest mounts the share, reads a file the host put there and
 *     writes one the host then reads;
 * Without in-flight tracking in qemu-storage-daemon 7.2 the front end keeps shadow rings (plugins/vhost-user/
 * shadow.ts): the restart is lossless even when requests finished out of order before the kill.
 * (passt networking has its own proof: plugins/virtio-net/passt.linux.test.ts.)
 * Runs where Linux can boot (inside the sandbox the runner sets TSVMM_GUESTKIT_DIR; or TSVMM_LINUX=1).
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startVirtiofsd, type VirtiofsShare } from '../../hosts/sandbox/virtiofs.js';
import { guestKit, type GuestKit } from '../../test/harness/guest-kit.js';
import { bootWithConsole, CONSOLE_INPUT_STEP, TYPED, type GuestRun } from '../../test/guest/guest-vm.js';
import { skipUnlessCi } from '../../test/setup/environment.js';

const MiB = 1 << 20;
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** The bytes qemu-storage-daemon wrote so far (/proc/<pid>/io wchar). */
function written(pid: number): number {
  try {
    return Number(/wchar: (\d+)/.exec(fs.readFileSync(`/proc/${pid}/io`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

function startQsd(dir: string, image: string, sock: string): number {
  const pidfile = path.join(dir, 'qsd.pid');
  fs.rmSync(pidfile, { force: true });
  execFileSync('qemu-storage-daemon', [
    '--blockdev',
    `driver=file,node-name=file0,filename=${image}`,
    '--export',
    `type=vhost-user-blk,id=exp0,node-name=file0,addr.type=unix,addr.path=${sock},writable=on`,
    '--daemonize',
    '--pidfile',
    pidfile,
  ]);
  return Number(fs.readFileSync(pidfile, 'utf8').trim());
}

const script = (): string => `${CONSOLE_INPUT_STEP}
A=/dev/vda
# 1. vhost-user-blk: 4 MiB at 1 MiB
dd if=/dev/urandom of=/tmp/small bs=1M count=4 2>/dev/null
echo "small-sha=$(sha256sum /tmp/small | cut -d' ' -f1)"
dd if=/tmp/small of=$A bs=1M seek=1 conv=fsync 2>/dev/null
echo "small-back=$(dd if=$A bs=1M skip=1 count=4 iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)"
# 2. 32 MiB at 8 MiB while the back end is killed and restarted
dd if=/dev/urandom of=/tmp/big bs=1M count=32 2>/dev/null
echo "big-sha=$(sha256sum /tmp/big | cut -d' ' -f1)"
echo big-start
if dd if=/tmp/big of=$A bs=64k seek=128 conv=fsync 2>/dev/null; then echo big-dd=ok; else echo big-dd=failed; fi
echo "big-back=$(dd if=$A bs=64k skip=128 count=512 iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)"
# 3. virtio-fs
mkdir -p /mnt/fs
if mount -t virtiofs share0 /mnt/fs; then echo fs-mount=ok; else echo fs-mount=failed; fi
echo "fs-read=$(cat /mnt/fs/from-host.txt)"
echo "written by the guest $(cat /proc/sys/kernel/random/uuid)" > /mnt/fs/from-guest.txt
echo "fs-wrote=$(cat /mnt/fs/from-guest.txt)"
sync
umount /mnt/fs
echo done=1
`;

describe('vhost-user-blk and virtio-fs in a Linux guest (linux tier)', function () {
  this.timeout(420_000); // the VM itself stops at its 360 s deadline with the console tail
  let kit: GuestKit;
  let dir: string;
  const stops: (() => void)[] = [];

  before(async function () {
    if (!process.env.TSVMM_LINUX && !process.env.TSVMM_GUESTKIT_DIR) {
      skipUnlessCi(
        this,
        'Linux does not boot here (the tier runner sets TSVMM_GUESTKIT_DIR or TSVMM_LINUX where it does)',
      );
    }
    kit = await guestKit({ log: () => {} });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vhost-linux-'));
    fs.chmodSync(dir, 0o755);
  });
  after(() => {
    for (const s of stops.splice(0).reverse()) {
      try {
        s();
      } catch {
        /* best effort */
      }
    }
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('serves a disk and a folder from other processes, and survives a back-end restart during I/O', async () => {
    // block back end
    const image = path.join(dir, 'disk.raw');
    fs.writeFileSync(image, Buffer.alloc(0));
    fs.truncateSync(image, 64 * MiB);
    const blkSock = path.join(dir, 'blk.sock');
    let qsd = startQsd(dir, image, blkSock);
    stops.push(() => process.kill(qsd, 'SIGKILL'));
    // folder back end
    const shared = path.join(dir, 'shared');
    fs.mkdirSync(shared);
    const hostText = `from the host ${randomBytes(4).toString('hex')}`;
    fs.writeFileSync(path.join(shared, 'from-host.txt'), hostText);
    const vfs: VirtiofsShare = await startVirtiofsd(shared, dir, 0);
    stops.push(() => vfs.stop());
    // the back-end killer: once the daemon has written part of the 32 MiB, kill it and start another
    let killedAt = -1;
    const base = 6 * MiB;
    const killer = setInterval(() => {
      const w = written(qsd);
      if (killedAt < 0 && w > base) {
        killedAt = w;
        process.kill(qsd, 'SIGKILL');
        qsd = startQsd(dir, image, blkSock);
        clearInterval(killer);
      }
    }, 20);
    stops.push(() => clearInterval(killer));

    const t0 = Date.now();
    const run: GuestRun = await bootWithConsole({
      kit,
      dir,
      name: 'vhost',
      script: script(),
      vcpus: 2,
      memory: '512M',
      memoryBackend: 'memfd',
      deadlineMs: 360_000, // ~30 s on an idle 2-core machine, 150 s with 8 other sessions on it
      plugins: [
        { name: 'vhost-user-blk', id: 'vub0', config: { socket: blkSock, reconnectMs: 50 } },
        { name: 'virtio-fs', id: 'fs0', config: { socket: path.join(dir, 'virtiofs-0.sock'), tag: 'share0' } },
      ],
    }).catch((err: Error) => {
      throw new Error(`${err.message}\n(back end killed at wchar ${killedAt}; virtiofsd: ${vfs.log().slice(-300)})`);
    });
    const r = run.result;
    const seconds = ((Date.now() - t0) / 1000).toFixed(1);
    const report = `boot+script ${seconds} s; killed at wchar ${killedAt}\n${run.console.slice(-3000)}`;
    expect(run.out.exitCode, report).to.equal(0);
    expect(r.get('console-input'), report).to.equal(TYPED);
    // 1. plain I/O
    expect(r.get('small-back'), report).to.equal(r.get('small-sha'));
    const img = fs.readFileSync(image);
    expect(sha(img.subarray(1 * MiB, 5 * MiB)), report).to.equal(r.get('small-sha'));
    // 2. killed and restarted during the write
    expect(killedAt, report).to.be.greaterThan(0);
    expect(killedAt, report).to.be.lessThan(base + 32 * MiB);
    expect(r.get('big-dd'), report).to.equal('ok');
    expect(r.get('big-back'), report).to.equal(r.get('big-sha'));
    expect(sha(img.subarray(8 * MiB, 40 * MiB)), report).to.equal(r.get('big-sha'));
    // 3. virtio-fs
    expect(r.get('fs-mount'), report).to.equal('ok');
    expect(r.get('fs-read'), report).to.equal(hostText);
    expect(fs.readFileSync(path.join(shared, 'from-guest.txt'), 'utf8').trim(), report).to.equal(r.get('fs-wrote'));
    console.log(`    vhost linux test: ${seconds} s (back end killed after ${(killedAt / MiB).toFixed(1)} MiB)`);
  });
});
