import { expect } from 'chai';
import { GuestAddress } from '../../core/address.js';
import { restoreSnapshot, takeSnapshot } from '../../core/state/persist.js';
import { hostileStateProblems, roundTripState, withData } from '../../core/testing/state.js';
import { VirtioBalloon } from './device.js';
import { balloonBench, pfnBytes } from './testing.js';

const MiB = 1n << 20n;

describe('virtio-balloon: state', () => {
  it('round-trips target, actual, the held statistics chain, the last statistics and the counters', async () => {
    const a = balloonBench({ target: 2n * MiB });
    a.dev.writeConfig(4, pfnBytes([100]));
    const inflate = a.queues[0];
    inflate.addChain([{ addr: inflate.alloc(8, pfnBytes([300, 301])), len: 8 }]);
    const stats = a.queues[2];
    const buf = stats.alloc(10);
    a.memory.write(GuestAddress.of(buf), Uint8Array.of(4, 0, 0, 0, 0x10, 0, 0, 0, 0, 0)); // freeMemory = 1 MiB
    stats.addChain([{ addr: buf, len: 10 }]);
    a.kick();

    const fresh = new VirtioBalloon({ id: 'balloon0', memorySize: a.memory.size, queueSize: 16 });
    const { first, second } = roundTripState(a.dev, fresh);
    expect(second).to.deep.equal(first);
    expect(first.data).to.deep.include({ numPages: 512, actual: 100, statsHead: 0, stats: { freeMemory: 1 << 20 } });
    expect(fresh.status()).to.deep.include({ targetBytes: 2n * MiB, actualBytes: 100n * 4096n });
    expect(fresh.counters()).to.deep.include({ inflatedPages: 2, statsUpdates: 1 });
  });

  it('after a restore the device still holds the statistics chain and gives it back when asked', () => {
    const a = balloonBench();
    const stats = a.queues[2];
    stats.addChain([{ addr: stats.alloc(10), len: 10 }]);
    a.kick();
    const saved = takeSnapshot(a.dev);
    expect((saved.data as { statsHead: unknown }).statsHead).to.equal(0);
    // What a transport's restore does: load the device's state, then activate it on the restored queues.
    restoreSnapshot(a.dev, JSON.parse(JSON.stringify(saved)));
    a.dev.activate(a.activation);
    void a.dev.requestStats().catch(() => {});
    expect(stats.readUsed()).to.deep.equal([{ id: 0, len: 0 }]);
  });

  it('refuses a state of another shape, a target above this guest, and hostile states', () => {
    const a = balloonBench();
    const saved = takeSnapshot(a.dev);
    const small = new VirtioBalloon({ id: 'balloon0', memorySize: 1n * MiB, queueSize: 16 });
    const big = withData(saved, (d) => ({ ...d, numPages: 1000 }));
    expect(() => restoreSnapshot(small, big)).to.throw(/above this guest's 256/);
    const noStats = new VirtioBalloon({ id: 'balloon0', memorySize: 4n * MiB, queueSize: 16, stats: false });
    expect(() => restoreSnapshot(noStats, saved)).to.throw(/saved with features/);
    expect(
      hostileStateProblems(a.dev, [
        withData(saved, (d) => ({ ...d, queueSize: 32 })),
        withData(saved, (d) => ({ ...d, numPages: -1 })),
        withData(saved, (d) => ({ ...d, numPages: 2 ** 32 })),
        withData(saved, (d) => ({ ...d, statsHead: 16 })),
        withData(saved, (d) => ({ ...d, features: 'xyz' })),
        withData(saved, (d) => ({ ...d, stats: { freeMemory: -5 } })),
        withData(saved, (d) => ({ ...d, metrics: {} })),
      ]),
    ).to.deep.equal([]);
  });
});
