import { expect } from 'chai';
import { GuestRange } from '../address.js';
import { RangeBus } from '../bus/range-bus.js';
import { MockHypervisor } from './mock-hypervisor.js';
import { InlineVcpuRunner } from './inline-vcpu-runner.js';
import { RecordingBusDevice, MemoryBusDevice } from './bus-devices.js';
import { MockDiskBackend } from './mock-disk.js';
import { ManualEventLoop, FakeEventFdFactory } from './manual-event-loop.js';
import { testGuestMemory } from './test-memory.js';
import { GuestAddress } from '../address.js';

describe('test doubles', () => {
  it('InlineVcpuRunner dispatches scripted io/mmio exits to the bus and stops on hlt', async () => {
    const bus = new RangeBus();
    const port = new RecordingBusDevice(() => [0x42]);
    const regs = new MemoryBusDevice(16);
    bus.register('pio', GuestRange.of(0x60, 1), port, 'kbd');
    bus.register('mmio', GuestRange.of(0xd0000000n, 16), regs, 'regs');
    const inData = new Uint8Array(1);
    const mmioRead = new Uint8Array(4);
    const hv = new MockHypervisor(() => [
      { kind: 'io', space: 'pio', direction: 'out', port: 0x60, size: 1, count: 2, data: Uint8Array.of(1, 2) },
      { kind: 'io', space: 'pio', direction: 'in', port: 0x60, size: 1, count: 1, data: inData },
      { kind: 'mmio', address: 0xd0000004n, isWrite: true, data: Uint8Array.of(9, 8, 7, 6) },
      { kind: 'mmio', address: 0xd0000004n, isWrite: false, data: mmioRead },
      { kind: 'hlt' },
      { kind: 'io', space: 'pio', direction: 'out', port: 0x60, size: 1, count: 1, data: Uint8Array.of(99) },
    ]);
    const vcpu = hv.createVm().createVcpu(0);
    const runner = new InlineVcpuRunner([vcpu], bus);
    await runner.start();
    const { exit } = await runner.finished;
    expect(exit.kind).to.equal('hlt');
    expect([...port.writtenBytes()]).to.deep.equal([1, 2]);
    expect(inData[0]).to.equal(0x42);
    expect([...mmioRead]).to.deep.equal([9, 8, 7, 6]);
    expect(vcpu.pendingExits).to.equal(1); // nothing ran after hlt
    expect(runner.stats.byKind.io.count).to.equal(2);
    expect(runner.stats.byKind.mmio.count).to.equal(2);
  });

  it('InlineVcpuRunner pauses and resumes', async () => {
    const bus = new RangeBus();
    const hv = new MockHypervisor(() => Array.from({ length: 500 }, () => ({ kind: 'intr' as const })));
    const vcpu = hv.createVm().createVcpu(0);
    const runner = new InlineVcpuRunner([vcpu], bus, { batch: 10 });
    await runner.start();
    await runner.pause();
    const at = vcpu.runs;
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    expect(vcpu.runs).to.equal(at);
    await runner.resume();
    const { exit } = await runner.finished;
    expect(exit.kind).to.equal('hlt'); // script exhausted: the mock returns hlt
    expect(vcpu.runs).to.equal(501);
  });

  it('MockDiskBackend range-checks, honours read-only and injects failures', async () => {
    const d = new MockDiskBackend(4096);
    await d.write(512n, [Uint8Array.of(1, 2), Uint8Array.of(3)]);
    const a = new Uint8Array(2),
      b = new Uint8Array(2);
    await d.read(511n, [a, b]);
    expect([...a, ...b]).to.deep.equal([0, 1, 2, 3]);
    try {
      await d.read(4095n, [new Uint8Array(2)]);
      expect.fail();
    } catch (e) {
      expect((e as Error).message).to.contain('outside');
    }
    d.failNext = new Error('EIO');
    try {
      await d.flush();
      expect.fail();
    } catch (e) {
      expect((e as Error).message).to.equal('EIO');
    }
    await d.flush();
    expect(d.ops).to.deep.include({ read: 1, write: 1, flush: 1 });
    const ro = new MockDiskBackend(512, true);
    try {
      await ro.write(0n, [Uint8Array.of(1)]);
      expect.fail();
    } catch (e) {
      expect((e as Error).message).to.contain('read-only');
    }
  });

  it('ManualEventLoop delivers fake eventfd readiness on flush and timers on advance', () => {
    const loop = new ManualEventLoop();
    const fds = new FakeEventFdFactory(loop);
    const e = fds.create();
    const got: bigint[] = [];
    const w = loop.watch(e.fd, { readable: true }, () => got.push(e.read()));
    e.write(3n);
    expect(got).to.deep.equal([]);
    loop.flush();
    expect(got).to.deep.equal([3n]);
    let ticks = 0;
    loop.setTimer(
      10,
      () => {
        ticks++;
      },
      { repeat: true },
    );
    loop.setTimer(5, () => {
      throw new Error('bad timer');
    });
    loop.advance(35);
    expect(ticks).to.equal(3);
    expect(loop.errors.map((x) => (x.err as Error).message)).to.deep.equal(['bad timer']);
    w.dispose();
    e.write();
    expect(loop.flush()).to.equal(0);
  });

  it('testGuestMemory gives heap memory', () => {
    const m = testGuestMemory(4096);
    m.writeU32(GuestAddress.of(8), 7);
    expect(m.readU32(GuestAddress.of(8))).to.equal(7);
    expect(m.regions[0].hostAddress).to.equal(0n);
  });
});
