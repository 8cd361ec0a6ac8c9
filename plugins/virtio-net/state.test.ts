import { expect } from 'chai';
import { takeSnapshot } from '../../core/state/persist.js';
import { hostileStateProblems, roundTripState, withData } from '../../core/testing/state.js';
import { FakeEventSystem } from '../virtio/testing.js';
import { formatMac, NET_CONFIG_SIZE } from './config-space.js';
import { Ctrl } from './constants.js';
import { VirtioNet, type VirtioNetOptions } from './device.js';
import { MemoryNetBackend, activateNet } from './testing.js';

const MAC = Uint8Array.of(0x52, 0x54, 0x00, 0x12, 0x34, 0x56);

describe('virtio-net: state', () => {
  let events: FakeEventSystem;
  beforeEach(() => {
    events = new FakeEventSystem();
  });
  const make = (o: Partial<VirtioNetOptions> = {}, pairs = 2) =>
    new VirtioNet(
      {
        id: 'net0',
        backend: new MemoryNetBackend(events.loop, { queuePairs: pairs }),
        mac: MAC,
        defer: () => {},
        queuePairs: pairs,
        ...o,
      },
      events.loop,
    );
  const statusOf = (dev: VirtioNet): number => {
    const b = new Uint8Array(NET_CONFIG_SIZE);
    dev.readConfig(0, b);
    return new DataView(b.buffer).getUint16(6, true);
  };

  it('round-trips the control-queue settings and link; the restored device activates with them', () => {
    const backend = new MemoryNetBackend(events.loop, { queuePairs: 2 });
    const dev = make({ backend });
    const h = activateNet(dev, events);
    const at = h.driver.ctrl(h.ctrlQueue, Ctrl.MQ, Ctrl.MQ_VQ_PAIRS_SET, Uint8Array.of(2, 0));
    h.kick(h.ctrlQueue);
    expect(h.driver.ack(at)).to.equal(Ctrl.OK);
    dev.setLink(false);

    const b2 = new MemoryNetBackend(events.loop, { queuePairs: 2 });
    const dev2 = make({ backend: b2, mac: Uint8Array.of(2, 0, 0, 0, 0, 9) });
    const { first, second } = roundTripState(dev, dev2);
    expect(second).to.deep.equal(first);
    expect(formatMac(dev2.mac), 'the saved MAC wins over the configured one').to.equal('52:54:00:12:34:56');
    expect(dev2.linkUp).to.equal(false);
    expect(statusOf(dev2) & 1, 'config space says link down').to.equal(0);
    activateNet(dev2, events);
    expect(dev2.activePairs).to.equal(2);
    expect(b2.activePairs, 'the backend gets the restored pair count at activation').to.equal(2);
  });

  it('refuses hostile state', () => {
    const dev = make();
    const good = takeSnapshot(dev);
    expect(
      hostileStateProblems(dev, [
        withData(good, (d) => ({ ...d, mac: 'zz' })),
        withData(good, (d) => ({ ...d, guestOffloads: '0x8000' })),
        withData(good, (d) => ({ ...d, guestOffloads: 3 })),
        withData(good, (d) => ({ ...d, bogus: 1 })),
        withData(good, (d) => ({ ...d, activePairs: 0 })),
        withData(good, (d) => ({
          ...d,
          macTable: { unicast: new Array(257).fill('02:00:00:00:00:01'), multicast: [] },
        })),
      ]),
    ).to.deep.equal([]);
    const single = make({}, 1);
    expect(hostileStateProblems(single, [withData(good, (d) => ({ ...d, activePairs: 2 }))])).to.deep.equal([]);
  });
});
