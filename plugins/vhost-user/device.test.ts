import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GuestAddress } from '../../core/address.js';
import { LinuxEventFdFactory } from '../../core/events/linux-eventfd.js';
import { UvEventLoop } from '../../core/events/uv-event-loop.js';
import type { EventFd } from '../../core/events/event-loop.js';
import { createMemfdMemory } from '../../core/memory/backends/memfd.js';
import { createAnonymousMmapMemory } from '../../core/memory/backends/anonymous-mmap.js';
import type { GuestMemory } from '../../core/memory/guest-memory.js';
import { VIRTIO_F_RING_EVENT_IDX, VIRTIO_F_VERSION_1, type VirtioActivation } from '../../core/virtio/virtio.js';
import { SplitQueue } from '../virtio/split-queue.js';
import { MockSplitQueue } from '../virtio/testing.js';
import { VhostUserDevice } from './device.js';
import { VhostUserFrontend } from './frontend.js';
import { ProtocolFeature, Req, VHOST_USER_F_PROTOCOL_FEATURES } from './protocol.js';
import { FakeVhostBackend } from './testing.js';

const FEATURES = VIRTIO_F_VERSION_1 | VIRTIO_F_RING_EVENT_IDX | (1n << 5n) | VHOST_USER_F_PROTOCOL_FEATURES;
const a = (v: bigint): GuestAddress => GuestAddress.of(v);

describe('vhost-user front end against the TypeScript fake back end', () => {
  let dir: string;
  let loop: UvEventLoop;
  let memory: GuestMemory;
  let kick: EventFd;
  const cleanup: (() => void)[] = [];

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'vhost-user-'));
    loop = new UvEventLoop();
    memory = createMemfdMemory({ regions: [{ start: 0n, size: 1n << 20n }], backend: 'memfd' });
    kick = new LinuxEventFdFactory().create();
  });
  afterEach(() => {
    for (const f of cleanup.splice(0).reverse()) f();
    kick.close();
    memory.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function backend(path: string, extra: Partial<ConstructorParameters<typeof FakeVhostBackend>[2]> = {}) {
    const b = new FakeVhostBackend(path, loop, {
      features: FEATURES,
      protocolFeatures: ProtocolFeature.CONFIG | ProtocolFeature.REPLY_ACK,
      config: Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8),
      ...extra,
    });
    cleanup.push(() => b.dispose());
    return b;
  }

  async function device(path: string, allowed = 1n << 5n, shadowRings?: 'auto' | 'off') {
    const fe = await VhostUserFrontend.connect({ socketPath: path, loop, configSize: 8, reconnectMs: 5 });
    const dev = new VhostUserDevice(
      {
        id: 'vu0',
        deviceType: 0x7e,
        queueMaxSizes: [16],
        allowedDeviceFeatures: allowed,
        config: fe.backend.config!,
        shadowRings,
      },
      fe,
      loop,
      new LinuxEventFdFactory(),
    );
    cleanup.push(() => dev.destroy());
    return dev;
  }

  /** Activates the device the way a transport does, with a MockSplitQueue as the driver. */
  function activate(dev: VhostUserDevice, features: bigint, mem = memory, callEvents?: EventFd[]) {
    const driver = new MockSplitQueue(mem, 16);
    const q = new SplitQueue(0, 16);
    driver.configure(q);
    q.activate(mem, features);
    let interrupts = 0;
    let wake: (() => void) | undefined;
    const resets: string[] = [];
    const act: VirtioActivation = {
      features,
      memory: mem,
      queues: [q],
      queueEvents: [kick],
      interrupt: {
        signalUsedQueue: () => {
          interrupts++;
          wake?.();
        },
        signalConfigChange: () => undefined,
      },
      needsReset: (r) => resets.push(r),
      callEvents,
    };
    dev.activate(act);
    const interrupted = (n: number) =>
      new Promise<void>((resolve) => {
        const check = () => (interrupts >= n ? resolve() : (wake = check));
        check();
      });
    return { driver, interrupted, resets, interrupts: () => interrupts };
  }

  /** Puts one chain (8 bytes out, 8 bytes in) on the ring and kicks. */
  function echo(driver: MockSplitQueue, bytes: number[]) {
    const out = driver.alloc(8, Uint8Array.from(bytes));
    const back = driver.alloc(8);
    driver.addChain([
      { addr: out, len: 8 },
      { addr: back, len: 8, write: true },
    ]);
    kick.write(1n);
    return back;
  }

  it('negotiates, reads the config, and offers only the features the plugin and transport allow', async () => {
    const path = join(dir, 'be.sock');
    const be = backend(path);
    const dev = await device(path, 0n);
    expect(dev.deviceFeatures).to.equal(VIRTIO_F_VERSION_1 | VIRTIO_F_RING_EVENT_IDX);
    expect(dev.frontend.backend.protocolFeatures).to.equal(ProtocolFeature.CONFIG); // REPLY_ACK not used
    const cfg = new Uint8Array(4);
    dev.readConfig(2, cfg);
    expect([...cfg]).to.deep.equal([3, 4, 5, 6]);
    await be.until(() => be.requests(Req.SET_OWNER).length === 1);
    expect(be.requests(Req.SET_PROTOCOL_FEATURES)).to.have.length(1);
  });

  it('shares guest RAM by fd: the back end serves the ring and the call fd interrupts the driver', async () => {
    const path = join(dir, 'be.sock');
    const be = backend(path);
    const dev = await device(path);
    const { driver, interrupted, resets } = activate(dev, VIRTIO_F_VERSION_1 | (1n << 5n));
    const back = echo(driver, [9, 8, 7, 6, 5, 4, 3, 2]);
    await interrupted(1);
    expect([...memory.read(a(back), 8)]).to.deep.equal([9, 8, 7, 6, 5, 4, 3, 2]);
    expect(driver.readUsed()).to.have.length(1);
    expect(resets).to.deep.equal([]);
    const table = be.requests(Req.SET_MEM_TABLE);
    expect(table).to.have.length(1);
    expect(table[0].fds).to.equal(2); // guest RAM, and the shadow rings (the fake has no in-flight tracking)
    const features = new DataView(be.requests(Req.SET_FEATURES)[0].payload.buffer).getBigUint64(0, true);
    expect(features).to.equal(VIRTIO_F_VERSION_1 | (1n << 5n) | VHOST_USER_F_PROTOCOL_FEATURES);
    expect(be.requests(Req.SET_VRING_ENABLE)).to.have.length(1);
  });

  it('with shadowRings off, leaves the data path to the back end: the guest rings, kick and call fds', async () => {
    const path = join(dir, 'be.sock');
    const be = backend(path); // no INFLIGHT_SHMFD: `auto` would shadow its rings
    const dev = await device(path, 1n << 5n, 'off');
    const irqfd = new LinuxEventFdFactory().create({ nonBlocking: true }); // the transport's irqfd of the queue
    cleanup.push(() => irqfd.close());
    const { driver, resets } = activate(dev, VIRTIO_F_VERSION_1 | VIRTIO_F_RING_EVENT_IDX, memory, [irqfd]);
    const back = echo(driver, [7, 7, 7, 7, 7, 7, 7, 7]);
    await be.until(() => be.served === 1);
    expect([...memory.read(a(back), 8)]).to.deep.equal([7, 7, 7, 7, 7, 7, 7, 7]);
    expect(irqfd.read()).to.equal(1n); // the back end interrupted the guest itself
    expect(dev.counters().callInterrupts).to.equal(0); // nothing relayed by the VMM
    expect(resets).to.deep.equal([]);
    expect(be.requests(Req.SET_MEM_TABLE)[0].fds).to.equal(1); // guest RAM only: no shadow ring region
    const addr = new DataView(be.requests(Req.SET_VRING_ADDR)[0].payload.buffer);
    const host = memory.regions[0].hostAddress;
    expect(addr.getBigUint64(8, true)).to.equal(host + driver.descTable);
    expect(addr.getBigUint64(16, true)).to.equal(host + driver.usedRing);
    expect(addr.getBigUint64(24, true)).to.equal(host + driver.availRing);
    // EVENT_IDX goes to the back end, which now keeps the guest's notification fields
    const features = new DataView(be.requests(Req.SET_FEATURES)[0].payload.buffer).getBigUint64(0, true);
    expect(features & VIRTIO_F_RING_EVENT_IDX).to.equal(VIRTIO_F_RING_EVENT_IDX);
  });

  it('reconnects to a restarted back end and resumes with what was still in flight', async () => {
    const path = join(dir, 'be.sock');
    const first = backend(path);
    const dev = await device(path);
    const { driver, interrupted } = activate(dev, VIRTIO_F_VERSION_1);
    echo(driver, [1, 1, 1, 1, 1, 1, 1, 1]);
    await interrupted(1);
    first.dispose(); // killed
    const during = echo(driver, [2, 2, 2, 2, 2, 2, 2, 2]); // the guest goes on while the back end is away
    kick.read(); // ... and its kick got lost: the restart still finds the request in the guest's ring
    const second = backend(path);
    await interrupted(2);
    expect([...memory.read(a(during), 8)]).to.deep.equal([2, 2, 2, 2, 2, 2, 2, 2]);
    expect(dev.frontend.reconnects).to.equal(1);
    expect(dev.counters()).to.deep.equal({ activations: 1, callInterrupts: 2, reconnects: 1 });
    const base = second.requests(Req.SET_VRING_BASE);
    expect(base).to.have.length(1);
    // shadow rings rebuilt from the one request in flight, starting at 0
    expect(new DataView(base[0].payload.buffer).getUint32(4, true)).to.equal(0);
    expect(second.requests(Req.SET_MEM_TABLE)).to.have.length(1);
    expect(driver.readUsed().map((u) => u.len)).to.deep.equal([8, 8]);
  });

  it('loses and repeats nothing when a back end without in-flight tracking dies after finishing out of order', async () => {
    const path = join(dir, 'be.sock');
    const first = backend(path, { hold: true });
    const dev = await device(path);
    const { driver, interrupted } = activate(dev, VIRTIO_F_VERSION_1);
    const backs = [1, 2, 3, 4].map((v) => echo(driver, new Array<number>(8).fill(v)));
    await first.until(() => first.held.length === 4);
    const heads = first.held.map((h) => h.head);
    first.complete([3, 1]); // the 4th and the 2nd finish; the 1st and the 3rd are still being worked on
    await interrupted(1);
    const used = driver.readUsed();
    expect(used.map((u) => u.id)).to.deep.equal([heads[3], heads[1]]);
    first.dispose(); // killed with two requests taken
    const second = backend(path);
    await second.until(() => second.served === 2);
    await interrupted(2);
    used.push(...driver.readUsed());
    // every request finished exactly once: no head twice (a driver takes that as a broken device), none lost
    expect(used.map((u) => u.id).sort()).to.deep.equal([...heads].sort());
    backs.forEach((b, i) => expect([...memory.read(a(b), 8)]).to.deep.equal(new Array<number>(8).fill(i + 1)));
    expect(dev.frontend.reconnects).to.equal(1);
  });

  it('stops the rings on a driver reset (GET_VRING_BASE) and sets them up again on the next activation', async () => {
    const path = join(dir, 'be.sock');
    const be = backend(path);
    const dev = await device(path);
    activate(dev, VIRTIO_F_VERSION_1);
    dev.reset();
    await be.until(() => be.requests(Req.GET_VRING_BASE).length === 1);
    const { driver, interrupted } = activate(dev, VIRTIO_F_VERSION_1);
    echo(driver, [3, 3, 3, 3, 3, 3, 3, 3]);
    await interrupted(1);
    expect(be.requests(Req.SET_MEM_TABLE)).to.have.length(2);
  });

  it('refuses guest RAM the back end cannot map, naming the fix', async () => {
    const path = join(dir, 'be.sock');
    backend(path);
    const dev = await device(path);
    const anon = createAnonymousMmapMemory({ regions: [{ start: 0n, size: 1n << 20n }], backend: 'anonymous' });
    cleanup.push(() => anon.close());
    const { resets } = activate(dev, VIRTIO_F_VERSION_1, anon);
    expect(resets).to.have.length(1);
    expect(resets[0]).to.match(/machine\.memoryBackend: memfd/);
  });

  it('fails to connect with one line naming the socket', async () => {
    const path = join(dir, 'absent.sock');
    let err: Error | undefined;
    await VhostUserFrontend.connect({ socketPath: path, loop }).catch((e: Error) => (err = e));
    expect(err?.message).to.equal(`vhost-user back end ${path}: ENOENT`);
  });
});
