import { expect } from 'chai';
import { OrderedDeviceRegistry } from './ordered-registry.js';
import { collectCounters, prefixCounters } from './counters.js';
import { hasCounters } from './device.js';

describe('device counters (contract C4)', () => {
  it('collects the counters of the devices that have them, by id, as integers', () => {
    const r = new OrderedDeviceRegistry();
    r.add({ id: 'plain' });
    r.add({ id: 'uart', counters: () => ({ txBytes: 3, ratio: 1.7, bad: Number.NaN }) } as never);
    expect(collectCounters(r)).to.deep.equal({ uart: { txBytes: 3, ratio: 1 } });
  });

  it('leaves out a device whose counters() throws and says which', () => {
    const r = new OrderedDeviceRegistry();
    const boom = {
      id: 'boom',
      counters: () => {
        throw new Error('x');
      },
    };
    r.add(boom as never);
    r.add({ id: 'ok', counters: () => ({ a: 1 }) } as never);
    const failed: string[] = [];
    expect(collectCounters(r, (id) => failed.push(id))).to.deep.equal({ ok: { a: 1 } });
    expect(failed).to.deep.equal(['boom']);
  });

  it('hasCounters tells Countable objects apart; prefixCounters dots the names', () => {
    expect(hasCounters({ id: 'a' })).to.equal(false);
    expect(hasCounters({ id: 'a', counters: () => ({}) })).to.equal(true);
    expect(prefixCounters('transport', { interrupts: 2 })).to.deep.equal({ 'transport.interrupts': 2 });
  });
});
