import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CfgType, Common } from '../virtio-pci/layout.js';
import { pciTestHost } from '../virtio-pci/testing.js';
import { VirtioVsock } from './device.js';

describe('virtio-vsock over virtio-pci (the device does not know its transport)', () => {
  it('is function 1af4:1053 with three queues; the driver reads the guest CID from the device cfg', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vsock-pci-'));
    const t = pciTestHost();
    const dev = new VirtioVsock({ id: 'vsock0', guestCid: 42n, udsPath: path.join(dir, 'v.sock') }, t.events.loop);
    try {
      await dev.listen();
      t.host.attachVirtioDevice(dev);
      const drv = t.driver();
      expect(drv.cfgRead(0x02, 2)).to.equal(0x1040 + 19);
      expect(drv.read(CfgType.device, 0, 8)).to.equal(42n);
      expect(drv.common(Common.numQueues, 2)).to.equal(3);
    } finally {
      await dev.destroy();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
