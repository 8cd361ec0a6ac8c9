import { expect } from 'chai';
import { GuestAddress } from '../../core/address.js';
import { VIRTIO_F_VERSION_1 } from '../../core/virtio/virtio.js';
import { CfgType } from '../virtio-pci/layout.js';
import { pciTestHost } from '../virtio-pci/testing.js';
import { MockSplitQueue } from '../virtio/testing.js';
import { VirtioBalloon } from './device.js';
import { pfnBytes, touchPage } from './testing.js';

describe('virtio-balloon over virtio-pci (the device does not know its transport)', () => {
  it('is function 1af4:1045; the driver reads num_pages from the device cfg and inflates through the queue', () => {
    const t = pciTestHost({ memorySize: 4 << 20, ioeventfd: false });
    const dev = new VirtioBalloon(
      { id: 'balloon0', memorySize: 4n << 20n, target: 1n << 20n, stats: false, freePageReporting: false },
      t.events.loop,
    );
    t.host.attachVirtioDevice(dev);
    const drv = t.driver();
    expect(drv.cfgRead(0x00, 2)).to.equal(0x1af4);
    expect(drv.cfgRead(0x02, 2)).to.equal(0x1040 + 5);
    expect(Number(drv.read(CfgType.device, 0, 4))).to.equal(256); // num_pages: 1 MiB
    drv.negotiate(VIRTIO_F_VERSION_1);
    const inflate = new MockSplitQueue(t.memory, 16, 0x10000n);
    drv.setupQueue(0, inflate);
    drv.setupQueue(1, new MockSplitQueue(t.memory, 16, 0x20000n));
    drv.driverOk();
    touchPage(t.memory, 600, 0x42);
    inflate.addChain([{ addr: inflate.alloc(4, pfnBytes([600])), len: 4 }]);
    drv.notify(0);
    t.events.run();
    expect(inflate.readUsed()).to.deep.equal([{ id: 0, len: 0 }]);
    expect(t.memory.read(GuestAddress.of(600n * 4096n), 1)[0]).to.equal(0);
    drv.write(CfgType.device, 4, 4, 1); // actual
    expect(dev.status().actualBytes).to.equal(4096n);
  });
});
