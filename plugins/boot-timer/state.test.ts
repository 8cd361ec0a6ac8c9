import { expect } from 'chai';
import { takeSnapshot } from '../../core/state/persist.js';
import { hostileStateProblems, roundTripState, withData } from '../../core/testing/state.js';
import { BootTimer } from './device.js';
import { ManualMonotonic, writeBootMarker } from './testing.js';

describe('boot-timer: state', () => {
  it('round-trips; a restored guest has booted: whenBooted resolves with the saved boot, a marker counts on', async () => {
    const clock = new ManualMonotonic(0);
    const a = new BootTimer({ id: 'bt', now: clock.now });
    clock.ms = 42;
    writeBootMarker(a);
    const b = new BootTimer({ id: 'bt', now: clock.now });
    const { first, second } = roundTripState(a, b);
    expect(second).to.deep.equal(first);
    expect((await b.whenBooted()).ms).to.equal(42);
    clock.ms = 50;
    writeBootMarker(b);
    expect(b.last?.ms, 'the first boot stays the boot').to.equal(42);
    expect(b.metrics.markers).to.equal(2);
  });

  it('refuses hostile state', () => {
    const b = new BootTimer({ id: 'bt' });
    const good = takeSnapshot(b);
    expect(
      hostileStateProblems(b, [
        withData(good, () => ({ markers: -1, boot: null })),
        withData(good, () => ({ markers: 0, boot: { ms: 'x' } })),
        withData(good, () => ({ markers: 0.5, boot: null })),
        withData(good, () => ({ markers: 1, boot: { ms: 1, sinceProcessStartMs: 2e12 } })),
        withData(good, () => ({ markers: 1, boot: null, version: 1 })),
      ]),
    ).to.deep.equal([]);
  });
});
