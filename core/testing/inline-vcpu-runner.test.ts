import { expect } from 'chai';
import { GuestRange } from '../address.js';
import { RangeBus } from '../bus/range-bus.js';
import { RecordingBusDevice } from './bus-devices.js';
import { InlineVcpuRunner } from './inline-vcpu-runner.js';
import { MockHypervisor } from './mock-hypervisor.js';

describe('InlineVcpuRunner (hot path bookkeeping)', () => {
  it('counts every exit under its own kind across kind changes and batch ends, with finite times', async () => {
    const bus = new RangeBus();
    const dev = new RecordingBusDevice(() => [0]);
    bus.register('pio', GuestRange.of(0x70, 2), dev, 'dev');
    const out = (port: number, ...bytes: number[]) => ({
      kind: 'io' as const,
      space: 'pio' as const,
      direction: 'out' as const,
      port,
      size: 1 as const,
      count: bytes.length,
      data: Uint8Array.from(bytes),
    });
    const hv = new MockHypervisor(() => [
      out(0x70, 1),
      out(0x71, 2),
      { kind: 'mmio', address: 0x1000n, isWrite: true, data: Uint8Array.of(5) },
      out(0x70, 3, 4, 5),
      { kind: 'debug' },
      out(0x71, 6),
      { kind: 'hlt' },
    ]);
    const runner = new InlineVcpuRunner([hv.createVm().createVcpu(0)], bus, { batch: 2 });
    await runner.start();
    const { exit } = await runner.finished;
    expect(exit.kind).to.equal('hlt');
    expect([...dev.writtenBytes()]).to.deep.equal([1, 2, 3, 4, 5, 6]);
    const counts = Object.fromEntries(Object.entries(runner.stats.byKind).map(([k, s]) => [k, s.count]));
    expect(counts).to.deep.equal({ io: 4, mmio: 1, debug: 1, hlt: 1 });
    for (const s of Object.values(runner.stats.byKind))
      expect(Number.isFinite(s.totalNs) && s.totalNs >= 0).to.equal(true);
    expect(bus.unclaimed.mmio).to.equal(1);
  });
});
