import { expect } from 'chai';
import { GuestAddress } from 'tsvmm';
import { hostileStateProblems, roundTripState, withData } from 'tsvmm/testing';
import { MockSplitQueue, VirtioDeviceType } from 'tsvmm/virtio';
import { MAX_REQUEST_BYTES, REQUESTS_PER_TURN, VirtioRng } from '../src/device.js';
import { rngBench } from './driver.js';

const at = (a: bigint) => GuestAddress.of(a);

describe('virtio-rng device (driven by tsvmm/virtio MockSplitQueue)', () => {
  it('is device type 4 with one queue and no config space', () => {
    const dev = new VirtioRng({ id: 'rng0' });
    expect(dev.deviceType).to.equal(VirtioDeviceType.rng).and.equal(4);
    expect(dev.queueMaxSizes).to.deep.equal([256]);
    const cfg = new Uint8Array(4).fill(0xff);
    dev.readConfig(0, cfg);
    expect([...cfg]).to.deep.equal([0, 0, 0, 0]);
  });

  it('fills every writable buffer of a chain with fresh host entropy and returns its length', () => {
    const b = rngBench();
    const one = b.drv.alloc(100);
    const two = b.drv.alloc(28);
    b.drv.addChain([
      { addr: one, len: 100, write: true },
      { addr: two, len: 28, write: true },
    ]);
    const three = b.drv.alloc(128);
    b.drv.addChain([{ addr: three, len: 128, write: true }]);
    b.dev.process();
    expect(b.drv.readUsed()).to.deep.equal([
      { id: 0, len: 128 },
      { id: 2, len: 128 },
    ]);
    const first = Buffer.concat([b.memory.read(at(one), 100), b.memory.read(at(two), 28)]);
    const second = Buffer.from(b.memory.read(at(three), 128));
    // 128 random bytes: all zero, or both requests equal, has probability 2^-1024.
    expect(first.equals(Buffer.alloc(128))).to.equal(false);
    expect(first.equals(second)).to.equal(false);
    expect(b.signals).to.deep.equal([0]);
    expect(b.resets).to.deep.equal([]);
    expect(b.dev.counters()).to.deep.equal({ requests: 2, bytes: 256 });
  });

  it('gives at most MAX_REQUEST_BYTES per request, whatever the driver asks for', () => {
    const b = rngBench({ fill: (v) => v.fill(0xab) });
    const big = MAX_REQUEST_BYTES + 4096;
    const buf = b.drv.alloc(big);
    b.drv.addChain([{ addr: buf, len: big, write: true }]);
    b.dev.process();
    expect(b.drv.readUsed()).to.deep.equal([{ id: 0, len: MAX_REQUEST_BYTES }]);
    expect(b.memory.read(at(buf + BigInt(MAX_REQUEST_BYTES)), 1)[0]).to.equal(0);
    expect(b.memory.read(at(buf + BigInt(MAX_REQUEST_BYTES - 1)), 1)[0]).to.equal(0xab);
  });

  it('a chain with a device-readable buffer stops the queue and asks for a reset (hostile driver)', () => {
    const b = rngBench();
    b.drv.addChain([
      { addr: b.drv.alloc(16), len: 16 },
      { addr: b.drv.alloc(16), len: 16, write: true },
    ]);
    b.dev.process();
    expect(b.resets).to.have.length(1);
    expect(b.resets[0]).to.match(/device-readable buffer/);
    expect(b.drv.readUsed()).to.deep.equal([]);
    // The queue is stopped: a later good chain is not touched.
    b.drv.addChain([{ addr: b.drv.alloc(16), len: 16, write: true }]);
    b.dev.process();
    expect(b.drv.readUsed()).to.deep.equal([]);
  });

  it('a buffer outside guest memory stops the queue with a reset, nothing is written', () => {
    const b = rngBench();
    b.drv.addChain([{ addr: 0xfff_0000n, len: 64, write: true }]);
    b.dev.process();
    expect(b.resets).to.have.length(1);
    expect(b.drv.readUsed()).to.deep.equal([]);
  });

  it('serves at most REQUESTS_PER_TURN chains per wake-up and the rest on a later turn', () => {
    const later: (() => void)[] = [];
    const b = rngBench({ queueSize: 512 });
    // Replace the bench's immediate defer with a queue we run by hand.
    (b.dev as unknown as { defer: (cb: () => void) => void }).defer = (cb) => later.push(cb);
    for (let i = 0; i < REQUESTS_PER_TURN + 10; i++) b.drv.addChain([{ addr: b.drv.alloc(8), len: 8, write: true }]);
    b.dev.process();
    expect(b.drv.readUsed()).to.have.length(REQUESTS_PER_TURN);
    expect(later).to.have.length(1);
    later[0]!();
    expect(b.drv.readUsed()).to.have.length(10);
  });

  it('state: round-trips through JSON, refuses another queue size and hostile states', () => {
    const a = rngBench();
    a.drv.addChain([{ addr: a.drv.alloc(32), len: 32, write: true }]);
    a.dev.process();
    const fresh = new VirtioRng({ id: 'rng0', queueSize: 16 });
    const { first, second } = roundTripState(a.dev, fresh);
    expect(second).to.deep.equal(first);
    expect(first.data).to.deep.equal({ queueSize: 16, requests: 1, bytes: 32 });
    expect(fresh.counters()).to.deep.equal({ requests: 1, bytes: 32 });
    expect(
      hostileStateProblems(fresh, [
        withData(first, (d) => ({ ...d, queueSize: 32 })),
        withData(first, (d) => ({ ...d, bytes: -1 })),
        withData(first, (d) => ({ ...d, requests: 'many' })),
        withData(first, (d) => ({ ...d, extra: 1 })),
        { ...first, id: 'rng1' },
      ]),
    ).to.deep.equal([]);
  });

  it('a reset stops serving until the next activation', () => {
    const b = rngBench();
    b.dev.reset();
    const drv: MockSplitQueue = b.drv;
    drv.addChain([{ addr: drv.alloc(8), len: 8, write: true }]);
    b.dev.process();
    expect(drv.readUsed()).to.deep.equal([]);
  });
});
