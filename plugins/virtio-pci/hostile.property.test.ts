import { expect } from 'chai';
import fc from 'fast-check';
import { VIRTIO_F_VERSION_1 } from '../../core/virtio/virtio.js';
import { EchoDevice, MockSplitQueue } from '../virtio/testing.js';
import { VIRTIO_BAR_SIZE } from './layout.js';
import { pciTestHost } from './testing.js';

/**
 * One guest access as the bus passes them: configuration space (naturally aligned 1, 2 or 4 bytes) or the
 * BAR (1, 2, 4 or 8 bytes anywhere inside it), any value; offsets lean towards the regions' starts.
 */
const access = fc.record({
  where: fc.constantFrom('config', 'bar'),
  write: fc.boolean(),
  size: fc.constantFrom(1, 2, 4, 8),
  offset: fc.oneof(
    fc.integer({ min: 0, max: 0xff }),
    fc.integer({ min: 0, max: Number(VIRTIO_BAR_SIZE) - 8 }),
    fc.constantFrom(0x0, 0x14, 0x16, 0x18, 0x1a, 0x1c, 0x20, 0x24, 0x1000, 0x2000, 0x3000, 0x4000, 0x400c, 0xc000),
  ),
  value: fc.oneof(
    fc.constantFrom(0, 1, 0xf, 0xff, 0xffff, 0xffff_ffff, 0x8000),
    fc.integer({ min: 0, max: 0xffff_ffff }),
  ),
});

describe('virtio-pci function: random guest accesses (property)', () => {
  it('never throw, keep the VMM up, and leave a second function working (100 runs x 100 accesses)', () => {
    fc.assert(
      fc.property(fc.array(access, { minLength: 100, maxLength: 100 }), (accesses) => {
        const t = pciTestHost({ ioeventfd: false });
        const victim = new EchoDevice('victim', t.events.loop, { deviceType: 63 });
        const bystander = new EchoDevice('bystander', t.events.loop, { deviceType: 63 });
        t.host.attachVirtioDevice(victim);
        t.host.attachVirtioDevice(bystander);
        const [va, ba] = t.bus.attachments();
        const v = va.device;
        t.driver(va); // enables decode, as the guest's driver does
        for (const a of accesses) {
          if (a.where === 'config') {
            const size = a.size === 8 ? 4 : a.size;
            const off = Math.min(a.offset - (a.offset % size), 256 - size);
            if (a.write) t.bus.writeConfig(v, off, size, a.value);
            else t.bus.readConfig(v, off, size);
            continue;
          }
          if (a.write) t.bus.writeBar(v, 0, BigInt(a.offset), a.size, a.value);
          else t.bus.readBar(v, 0, BigInt(a.offset), a.size);
          t.events.run();
        }
        expect(t.events.errors).to.deep.equal([]);
        // The other function is untouched and serves a request end to end.
        const b = t.driver(ba);
        const q = new MockSplitQueue(t.memory, 16, 0x80000n);
        b.negotiate(VIRTIO_F_VERSION_1);
        b.setupQueue(0, q);
        expect(b.driverOk() & 0x40).to.equal(0);
        const data = Uint8Array.of(1, 2, 3);
        q.addChain([
          { addr: q.alloc(3, data), len: 3 },
          { addr: q.alloc(8), len: 8, write: true },
        ]);
        b.notify(0);
        t.events.run();
        expect(q.readUsed()).to.deep.equal([{ id: 0, len: 3 }]);
      }),
      { numRuns: 100 },
    );
  });
});
