import { expect } from 'chai';
import fc from 'fast-check';
import { GuestAddress } from '../../core/address.js';
import { VIRTIO_F_RING_EVENT_IDX, VIRTIO_F_VERSION_1 } from '../../core/virtio/virtio.js';
import { VIRTIO_BAR_SIZE } from '../../plugins/virtio-pci/layout.js';
import { pciTestHost } from '../../plugins/virtio-pci/testing.js';
import { EchoDevice, MockSplitQueue } from '../../plugins/virtio/testing.js';
import { Outcomes, fuzzParams, fuzzTimeout, fuzzTitle, reportOutcomes } from './support.js';

/**
 * PCI configuration space and the virtio-pci BAR of a function whose driver got as far as the case says (nothing,
 * features negotiated, or a live queue with MSI-X on), then hostile accesses: configuration space at any offset
 * and width, the BAR anywhere (common config: queue select/size/addresses changed after DRIVER_OK, status writes,
 * MSI-X vectors; notify; the MSI-X table), any values; with now and then a notify of the live queue after the
 * driver's ring bytes were overwritten. Invariants: nothing throws out of the bus, no error escapes the device's
 * event loop, and a second function on the bus still negotiates and serves a request end to end.
 * (plugins/pci/root-bus.property.test.ts fuzzes the root bus itself: ECAM, CF8/CFC, BAR placement.)
 */
const offsets = fc.oneof(
  fc.integer({ min: 0, max: 0x3f }), // common configuration
  fc.integer({ min: 0, max: Number(VIRTIO_BAR_SIZE) - 8 }),
  fc.constantFrom(0x14, 0x16, 0x18, 0x1a, 0x1c, 0x1e, 0x20, 0x28, 0x30, 0x1000, 0x2000, 0x3000, 0x3004, 0x4000, 0x400c),
);
const value = fc.oneof(
  fc.constantFrom(0, 1, 0xf, 0xff, 0x8000, 0xffff, 0xffff_ffff, 0x8000_0000),
  fc.integer({ min: 0, max: 0xffff_ffff }),
);
const access = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      where: fc.constant('bar' as const),
      write: fc.boolean(),
      size: fc.constantFrom(1, 2, 4, 4, 8),
      offset: offsets,
      value,
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      where: fc.constant('config' as const),
      write: fc.boolean(),
      size: fc.constantFrom(1, 2, 4),
      offset: fc.integer({ min: 0, max: 0xff }),
      value,
    }),
  },
  { weight: 1, arbitrary: fc.record({ where: fc.constant('ring' as const), offset: fc.nat(0xfff), value }) },
);

describe('fuzz: PCI configuration space and the virtio-pci BAR', function () {
  this.timeout(fuzzTimeout(2));

  it(fuzzTitle('hostile accesses from any driver state: contained, a second function keeps working'), () => {
    const outcomes = new Outcomes();
    // One bus for every case (attaching costs more than the accesses): the bystander is plugged in once, the
    // victim anew for each case and unplugged after it.
    const t = pciTestHost({ ioeventfd: false });
    const bystander = new EchoDevice('bystander', t.events.loop, { deviceType: 63 });
    t.host.attachVirtioDevice(bystander);
    const ba = t.bus.attachments()[0];
    let n = 0;
    /** The other function is untouched and serves a request end to end (checked every 8 cases and at the end). */
    const bystanderServes = (): void => {
      const b = t.driver(ba);
      const bq = new MockSplitQueue(t.memory, 16, 0x80000n);
      b.negotiate(VIRTIO_F_VERSION_1);
      b.setupQueue(0, bq);
      expect(b.driverOk() & 0x40).to.equal(0);
      bq.addChain([
        { addr: bq.alloc(3, Uint8Array.of(1, 2, 3)), len: 3 },
        { addr: bq.alloc(8), len: 8, write: true },
      ]);
      b.notify(0);
      t.events.run();
      expect(bq.readUsed()).to.deep.equal([{ id: 0, len: 3 }]);
    };
    fc.assert(
      fc.property(
        fc.constantFrom('none', 'features', 'live', 'live', 'msix'),
        fc.array(access, { minLength: 1, maxLength: 24 }),
        (start, accesses) => {
          const victim = new EchoDevice(`victim${n++}`, t.events.loop, { deviceType: 63 });
          const attachment = t.host.attachVirtioDevice(victim);
          const va = t.bus.attachments().find((x) => x !== ba)!;
          try {
            const v = t.driver(va);
            const q = new MockSplitQueue(t.memory, 16, 0x40000n);
            if (start !== 'none') v.negotiate(VIRTIO_F_VERSION_1 | VIRTIO_F_RING_EVENT_IDX);
            if (start === 'msix') v.enableMsix(2);
            if (start === 'live' || start === 'msix') {
              v.setupQueue(0, q, start === 'msix' ? 0 : undefined);
              v.driverOk();
              q.addChain([
                { addr: q.alloc(3, Uint8Array.of(1, 2, 3)), len: 3 },
                { addr: q.alloc(8), len: 8, write: true },
              ]);
            }
            const dev = va.device;
            for (const a of accesses) {
              if (a.where === 'config') {
                const off = Math.min(a.offset - (a.offset % a.size), 256 - a.size);
                if (a.write) t.bus.writeConfig(dev, off, a.size, a.value);
                else t.bus.readConfig(dev, off, a.size);
              } else if (a.where === 'bar') {
                if (a.write) t.bus.writeBar(dev, 0, BigInt(a.offset), a.size, a.value);
                else t.bus.readBar(dev, 0, BigInt(a.offset), a.size);
              } else {
                // the driver's rings and buffers scribbled over, then a kick of the live queue
                const at = GuestAddress.of(q.descTable + BigInt(a.offset % 0x400));
                t.memory.write(at, Uint8Array.of(a.value & 0xff, a.value >>> 24));
                v.notify(0);
              }
              t.events.run();
            }
            expect(t.events.errors, 'errors escaping the event loop').to.deep.equal([]);
            const st = v.status;
            outcomes.add(`${start}: status ${st & 0x40 ? 'needs reset' : st & 0x4 ? 'driver ok' : 'other'}`);
          } finally {
            attachment.dispose();
          }
          if (n % 8 === 0) bystanderServes();
        },
      ),
      fuzzParams(),
    );
    bystanderServes();
    reportOutcomes('virtio-pci', outcomes, ['live: status driver ok', 'live: status needs reset'], 4);
  });
});
