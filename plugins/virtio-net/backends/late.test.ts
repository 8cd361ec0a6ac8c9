import { expect } from 'chai';
import { FULL_OFFLOADS, MemoryNetBackend } from '../testing.js';
import type { HostIovec } from '../iovec.js';
import { LateBackend } from './late.js';
import { opensLate } from './open.js';

/** A memory backend with a gathered send, as a tap has. */
class GatherBackend extends MemoryNetBackend {
  gathered = 0;
  sendv(_queue: number, _iov: HostIovec): boolean {
    this.gathered++;
    return true;
  }
}

const shape = { kind: 'memory', description: 'memory net0', queuePairs: 1, vnetHeader: true };

describe("virtio-net LateBackend: a tap opened once a migration's source let go of it", () => {
  it('before open: every offload (the saved driver features always fit), no I/O; after: the real backend', () => {
    let opens = 0;
    const real = new GatherBackend(undefined, { offloads: FULL_OFFLOADS });
    const late = new LateBackend(shape, () => (opens++, real));
    expect(late.offloads.guest).to.deep.equal({ csum: true, tso4: true, tso6: true, ecn: true, ufo: true });
    expect(() => late.fd(0)).to.throw(/not opened yet/);
    expect(() => late.send(0, new Uint8Array(60))).to.throw(/not opened yet/);
    expect(opens, 'nothing opened before open()').to.equal(0);
    late.open();
    late.open();
    expect([opens, late.opened]).to.deep.equal([1, true]);
    expect(late.offloads, "the real backend's offloads from now on").to.equal(FULL_OFFLOADS);
    expect(late.fd(0)).to.equal(real.fd(0));
    late.setGuestOffloads({ csum: true, tso4: true, tso6: false, ecn: false, ufo: false });
    expect(real.guestOffloads?.tso4).to.equal(true);
    late.setActiveQueuePairs(1);
    expect(real.activePairs).to.equal(1);
    expect(late.sendv(0, {} as HostIovec)).to.equal(true);
    expect(real.gathered).to.equal(1);
    real.inject(new Uint8Array(70));
    expect(late.recv(0, new Uint8Array(2048))).to.equal(70);
    late.close();
    expect(real.closed).to.equal(true);
  });

  it('refuses (and closes) a backend whose shape differs or that has no gathered send', () => {
    const two = new GatherBackend(undefined, { queuePairs: 2 });
    expect(() => new LateBackend(shape, () => two).open()).to.throw(/2 queue pairs/);
    expect(two.closed).to.equal(true);
    const plain = new MemoryNetBackend();
    expect(() => new LateBackend(shape, () => plain).open()).to.throw(/cannot be opened late/);
    expect(plain.closed).to.equal(true);
  });

  it('closed before it was opened, it never opens', () => {
    let opens = 0;
    const late = new LateBackend(shape, () => (opens++, new GatherBackend()));
    late.close();
    expect(() => late.open()).to.throw(/closed before it was opened/);
    expect(opens).to.equal(0);
  });

  it('opens late only a tap named in the config', () => {
    expect(opensLate({ kind: 'tap', name: 'tap0', create: false })).to.equal(true);
    expect(opensLate({ kind: 'tap', name: 'tap%d', create: true }), 'a template makes a new tap').to.equal(false);
    expect(opensLate({ kind: 'tap', fds: [3], create: false }), 'inherited fds').to.equal(false);
  });
});
