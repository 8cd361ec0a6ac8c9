import { expect } from 'chai';
import fc from 'fast-check';
import { GuestAddress } from '../../core/address.js';
import { testGuestMemory } from '../../core/testing/test-memory.js';
import { watchedMemory } from '../../core/testing/watched-memory.js';
import { MAX_FRAME_WITH_HDR, VNET_HDR_SIZE } from '../../plugins/virtio-net/constants.js';
import { VirtioNet } from '../../plugins/virtio-net/device.js';
import { MemoryNetBackend, activateNet } from '../../plugins/virtio-net/testing.js';
import { FakeEventSystem } from '../../plugins/virtio/testing.js';
import { Outcomes, fuzzParams, fuzzTimeout, fuzzTitle, reportOutcomes, rssMiB } from './support.js';

/**
 * virtio-net request handling under a hostile driver: TX frames with any vnet header (flags, GSO
 * type, header and segment sizes, checksum offsets) and length, control commands of any class,
 * command and payload, RX buffers of any size while the backend delivers frames of any length,
 * and random bytes poked over the TX descriptor table.
 */
const QUEUE_SIZE = 16;
const MAC = Uint8Array.of(0x52, 0x54, 0, 0x12, 0x34, 0x56);
const header = fc.record({
  flags: fc.oneof(fc.constantFrom(0, 1, 2, 4), fc.integer({ min: 0, max: 255 })),
  gso: fc.oneof(fc.constantFrom(0, 1, 3, 4, 5, 0x81), fc.integer({ min: 0, max: 255 })),
  hdrLen: fc.oneof(fc.constantFrom(0, 14, 54, 0xffff), fc.integer({ min: 0, max: 0xffff })),
  gsoSize: fc.oneof(fc.constantFrom(0, 1, 1448, 0xffff), fc.integer({ min: 0, max: 0xffff })),
  csumStart: fc.oneof(fc.constantFrom(0, 14, 34, 0xffff), fc.integer({ min: 0, max: 0xffff })),
  csumOffset: fc.oneof(fc.constantFrom(0, 6, 16, 0xffff), fc.integer({ min: 0, max: 0xffff })),
});
const step = fc.oneof(
  fc.record({
    t: fc.constant('tx' as const),
    header,
    len: fc.oneof(fc.integer({ min: 0, max: 200 }), fc.integer({ min: 0, max: 70_000 })),
    oneBuffer: fc.boolean(),
    indirect: fc.boolean(),
  }),
  fc.record({
    t: fc.constant('ctrl' as const),
    cls: fc.oneof(fc.integer({ min: 0, max: 5 }), fc.integer({ min: 0, max: 255 })),
    cmd: fc.oneof(fc.integer({ min: 0, max: 5 }), fc.integer({ min: 0, max: 255 })),
    data: fc.uint8Array({ maxLength: 40 }),
    noAck: fc.boolean(),
  }),
  fc.record({
    t: fc.constant('rx' as const),
    buffers: fc.integer({ min: 0, max: 4 }),
    size: fc.oneof(fc.constantFrom(0, 1, 11, 12, 13, 1526), fc.integer({ min: 0, max: 4096 })),
    frames: fc.array(fc.integer({ min: 0, max: 70_000 }), { maxLength: 3 }),
  }),
  fc.record({
    t: fc.constant('poke' as const),
    at: fc.nat(16 * QUEUE_SIZE - 1),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }),
  }),
);
const hostileNet = fc.record({ mrg: fc.boolean(), steps: fc.array(step, { minLength: 1, maxLength: 8 }) });

describe('fuzz: virtio-net request handling', function () {
  this.timeout(fuzzTimeout(3));
  const { mem, watch } = watchedMemory(testGuestMemory(16n << 20n));

  it(fuzzTitle('hostile TX, RX and control traffic: contained, nothing outside guest memory, frames bounded'), () => {
    const outcomes = new Outcomes();
    const rssBefore = rssMiB();
    fc.assert(
      fc.property(hostileNet, (c) => {
        watch.reset();
        const events = new FakeEventSystem();
        const backend = new MemoryNetBackend(events.loop);
        const dev = new VirtioNet({ id: 'net0', backend, mac: MAC, defer: () => {} }, events.loop);
        const features = c.mrg ? dev.deviceFeatures : dev.deviceFeatures & ~(1n << 15n); // MRG_RXBUF is bit 15
        const h = activateNet(dev, events, { queueSize: QUEUE_SIZE, memory: mem, features });
        const acks: bigint[] = [];
        for (const s of c.steps) {
          if (h.resets.length > 0) break;
          if (s.t === 'tx') {
            const frame = new Uint8Array(VNET_HDR_SIZE + s.len).fill(0x33);
            const dv = new DataView(frame.buffer);
            dv.setUint8(0, s.header.flags);
            dv.setUint8(1, s.header.gso);
            dv.setUint16(2, s.header.hdrLen, true);
            dv.setUint16(4, s.header.gsoSize, true);
            dv.setUint16(6, s.header.csumStart, true);
            dv.setUint16(8, s.header.csumOffset, true);
            h.driver.sendTx(frame, 0, { oneBuffer: s.oneBuffer, indirect: s.indirect });
            h.kick(1);
          } else if (s.t === 'ctrl') {
            acks.push(h.driver.ctrl(h.ctrlQueue, s.cls, s.cmd, s.data, { noAck: s.noAck }));
            h.kick(h.ctrlQueue);
          } else if (s.t === 'rx') {
            if (s.buffers > 0) h.driver.addRxBuffers(s.buffers, s.size);
            for (const n of s.frames) backend.inject(new Uint8Array(Math.min(n, MAX_FRAME_WITH_HDR + 100)).fill(0x44));
            h.kick(0);
            h.run();
          } else {
            mem.write(GuestAddress.of(h.mqs[1].descTable + BigInt(s.at)), s.bytes);
            h.kick(1);
          }
        }
        expect(events.errors, "errors out of the device's handlers").to.deep.equal([]);
        expect(watch.outside, 'accesses outside guest memory').to.deep.equal([]);
        for (const f of backend.sent)
          expect(f.frame.length, 'frame sent to the backend').to.be.at.most(MAX_FRAME_WITH_HDR);
        outcomes.add(h.resets.length > 0 ? 'needs reset' : 'running');
        for (const a of acks) {
          const v = mem.readU8(GuestAddress.of(a));
          outcomes.add(v === 0 ? 'ctrl OK' : v === 1 ? 'ctrl ERR' : 'ctrl unanswered');
        }
        if (backend.sent.length > 0) outcomes.add('tx sent');
        if (h.mqs[0].usedIdx > 0) outcomes.add('rx delivered');
        dev.destroy();
      }),
      fuzzParams(),
    );
    reportOutcomes(
      'virtio-net',
      outcomes,
      ['running', 'needs reset', 'tx sent', 'rx delivered', 'ctrl OK', 'ctrl ERR'],
      6,
    );
    expect(rssMiB() - rssBefore, 'resident memory growth (MiB)').to.be.below(512);
  });
});
