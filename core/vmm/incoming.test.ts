import { expect } from 'chai';
import { incomingVm, markIncoming } from './incoming.js';

/** A promise and its resolve. */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe('core/vmm/incoming: a VM built before its migration source let go', () => {
  it('is known by its config object only while marked', () => {
    const config = {};
    expect(incomingVm(config)).to.equal(undefined);
    const released = deferred();
    const gate = markIncoming(config, released.promise);
    expect(incomingVm(config)).to.equal(gate);
    expect(incomingVm({})).to.equal(undefined);
  });

  it('takes a resource as soon as it is free, before the source let go of everything', async () => {
    const released = deferred();
    const gate = markIncoming({}, released.promise);
    let tries = 0;
    gate.defer('disk a', async () => {
      if (++tries < 3) throw new Error('locked by the source');
    });
    expect(gate.deferred).to.equal(1);
    await gate.takeAll(); // `released` never resolved: the third try succeeded on its own
    expect(tries).to.equal(3);
    expect(gate.deferred).to.equal(0);
  });

  it('in order; a take that still fails once the source let go fails the whole, naming it', async () => {
    const released = deferred();
    const gate = markIncoming({}, released.promise);
    const order: string[] = [];
    let tries = 0;
    gate.defer('disk a', async () => void order.push('a'));
    gate.defer('the tap of net0', async () => {
      tries++;
      throw new Error('EBUSY');
    });
    const all = gate.takeAll().catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 50));
    expect(tries, 'tried again while the source lets go').to.be.greaterThan(1);
    released.resolve();
    const err = (await all) as Error;
    expect(order).to.deep.equal(['a']);
    expect(err.message).to.equal('taking the tap of net0 after the source let go failed: EBUSY');
  });
});
