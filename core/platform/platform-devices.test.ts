import { expect } from 'chai';
import { GuestRange } from '../address.js';
import { PlatformDeviceList } from './platform-devices.js';

describe('PlatformDeviceList', () => {
  it('lists devices in order, refuses a duplicate id, and forgets a disposed one', () => {
    const l = new PlatformDeviceList();
    const a = l.add({ kind: 'virtio-mmio', id: 'a', mmio: GuestRange.of(0xd0001000n, 0x1000n), gsi: 5 });
    l.add({ kind: 'virtio-mmio', id: 'b', mmio: GuestRange.of(0xd0002000n, 0x1000n), gsi: 6 });
    expect(l.list().map((d) => d.id)).to.deep.equal(['a', 'b']);
    expect(() => l.add({ kind: 'virtio-mmio', id: 'a', mmio: GuestRange.of(0xd0003000n, 0x1000n), gsi: 7 })).to.throw(
      /already listed/,
    );
    a.dispose();
    expect(l.list().map((d) => d.id)).to.deep.equal(['b']);
  });
});
