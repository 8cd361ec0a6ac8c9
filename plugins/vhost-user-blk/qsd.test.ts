import { expect } from 'chai';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GuestAddress } from '../../core/address.js';
import { LinuxEventFdFactory } from '../../core/events/linux-eventfd.js';
import { UvEventLoop } from '../../core/events/uv-event-loop.js';
import { createMemfdMemory } from '../../core/memory/backends/memfd.js';
import { VIRTIO_F_VERSION_1, VirtioDeviceType } from '../../core/virtio/virtio.js';
import { skipUnlessCi } from '../../test/setup/environment.js';
import { SplitQueue } from '../virtio/split-queue.js';
import { MockSplitQueue } from '../virtio/testing.js';
import { VhostUserDevice } from '../vhost-user/device.js';
import { VhostUserFrontend } from '../vhost-user/frontend.js';
import { blkDeviceShape, VHOST_BLK_CONFIG_SIZE } from './shape.js';

const QSD = 'qemu-storage-daemon';
const FLUSH = 1n << 9n;
const a = (v: bigint): GuestAddress => GuestAddress.of(v);
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** Starts qemu-storage-daemon exporting `image` at `sock`; returns once the export listens (--daemonize). */
function startQsd(dir: string, image: string, sock: string): number {
  const pidfile = join(dir, 'qsd.pid');
  rmSync(pidfile, { force: true });
  execFileSync(QSD, [
    '--blockdev',
    `driver=file,node-name=file0,filename=${image}`,
    '--export',
    `type=vhost-user-blk,id=exp0,node-name=file0,addr.type=unix,addr.path=${sock},writable=on`,
    '--daemonize',
    '--pidfile',
    pidfile,
  ]);
  return Number(readFileSync(pidfile, 'utf8').trim());
}

describe('vhost-user-blk against qemu-storage-daemon (real back end, the driver played by a mock ring)', function () {
  this.timeout(30000);
  let dir: string;
  const cleanup: (() => void)[] = [];

  before(function () {
    if (spawnSync(QSD, ['--version']).status !== 0) skipUnlessCi(this, `${QSD} is not installed (qemu-system-common)`);
  });
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'vhost-blk-'));
  });
  afterEach(() => {
    for (const f of cleanup.splice(0).reverse()) f();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads and writes the image, and resumes after the daemon is killed and restarted', async () => {
    const image = join(dir, 'disk.raw');
    const sock = join(dir, 'blk.sock');
    const initial = randomBytes(1 << 20);
    writeFileSync(image, initial);
    let pid = startQsd(dir, image, sock);
    cleanup.push(() => {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    });
    const loop = new UvEventLoop();
    const memory = createMemfdMemory({ regions: [{ start: 0n, size: 4n << 20n }], backend: 'memfd' });
    cleanup.push(() => memory.close());
    const kick = new LinuxEventFdFactory().create();
    cleanup.push(() => kick.close());
    const fe = await VhostUserFrontend.connect({ socketPath: sock, loop, configSize: VHOST_BLK_CONFIG_SIZE });
    const dev = new VhostUserDevice(
      { id: 'vub0', deviceType: VirtioDeviceType.block, ...blkDeviceShape(fe.backend, 1, 128, 'vub0') },
      fe,
      loop,
      new LinuxEventFdFactory(),
    );
    cleanup.push(() => dev.destroy());
    const cfg = new Uint8Array(8);
    dev.readConfig(0, cfg);
    expect(new DataView(cfg.buffer).getBigUint64(0, true)).to.equal(2048n); // capacity in sectors
    expect(dev.deviceFeatures & FLUSH).to.equal(FLUSH);

    const driver = new MockSplitQueue(memory, 128);
    const q = new SplitQueue(0, 128);
    driver.configure(q);
    const features = VIRTIO_F_VERSION_1 | FLUSH;
    q.activate(memory, features);
    let interrupts = 0;
    let wake: (() => void) | undefined;
    dev.activate({
      features,
      memory,
      queues: [q],
      queueEvents: [kick],
      interrupt: {
        signalUsedQueue: () => {
          interrupts++;
          wake?.();
        },
        signalConfigChange: () => undefined,
      },
      needsReset: (why) => {
        throw new Error(why);
      },
    });
    let completed = 0;
    const done = (n: number) =>
      new Promise<void>((resolve) => {
        const check = () => {
          completed += driver.readUsed().length;
          if (completed >= n) resolve();
          else wake = check;
        };
        check();
      });
    /** Queues one request (type 0 read, 1 write, 4 flush); returns the data buffer and status byte addresses. */
    const request = (type: number, sector: bigint, data?: Uint8Array, len = data?.length ?? 0) => {
      const hdr = new Uint8Array(16);
      new DataView(hdr.buffer).setUint32(0, type, true);
      new DataView(hdr.buffer).setBigUint64(8, sector, true);
      const h = driver.alloc(16, hdr);
      const buf = len ? driver.alloc(len, data) : 0n;
      const status = driver.alloc(1, Uint8Array.of(0xff));
      driver.addChain([
        { addr: h, len: 16 },
        ...(len ? [{ addr: buf, len, write: type === 0 }] : []),
        { addr: status, len: 1, write: true },
      ]);
      kick.write(1n);
      return { buf, status };
    };

    // write 8 KiB at sector 16, flush, read the first 8 KiB back
    const payload = randomBytes(8192);
    const w = request(1, 16n, payload);
    const f = request(4, 0n);
    const r = request(0, 0n, undefined, 8192);
    await done(3);
    for (const s of [w.status, f.status, r.status]) expect(memory.readU8(a(s))).to.equal(0);
    const onDisk = readFileSync(image);
    expect(sha(onDisk.subarray(16 * 512, 16 * 512 + 8192))).to.equal(sha(payload));
    expect(sha(memory.read(a(r.buf), 8192))).to.equal(sha(initial.subarray(0, 8192)));

    // kill the daemon; the guest goes on queueing; a new daemon on the same socket serves it. The read is
    // queued once the write finished: virtio gives no order between requests in flight (as a driver, which
    // waits for a write before it reads the same sector back)
    process.kill(pid, 'SIGKILL');
    const second = randomBytes(4096);
    const w2 = request(1, 100n, second);
    pid = startQsd(dir, image, sock);
    await done(4);
    const r2 = request(0, 100n, undefined, 4096);
    await done(5);
    expect(fe.reconnects).to.equal(1);
    expect(memory.readU8(a(w2.status))).to.equal(0);
    expect(memory.readU8(a(r2.status))).to.equal(0);
    expect(sha(memory.read(a(r2.buf), 4096))).to.equal(sha(second));
    expect(sha(readFileSync(image).subarray(100 * 512, 100 * 512 + 4096))).to.equal(sha(second));
    expect(interrupts).to.be.greaterThan(0);
  });
});
