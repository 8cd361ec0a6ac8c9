import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { assembleDeviceVm, mmioRegisters } from '../../core/testing/test-plugins.js';

describe('virtio-vsock plugin in an assembled VM (mock hypervisor)', () => {
  let dir: string;
  before(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vsock-plugin-'))));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const assemble = (config: Record<string, unknown>) =>
    assembleDeviceVm(dir, [{ name: 'virtio-vsock', id: 'vsock0', config }]);

  it('listens on uds_path (relative to the config), shows DeviceID 19 and the CID, removes the socket on teardown', async () => {
    const vm = await assemble({ guestCid: 7, udsPath: 'v.sock' });
    const sock = path.join(dir, 'v.sock');
    try {
      expect(fs.lstatSync(sock).isSocket()).to.equal(true);
      const reg = mmioRegisters(vm, 'vsock0');
      expect(reg(0x008)).to.equal(19);
      expect(reg(0x100)).to.equal(7);
    } finally {
      await vm.dispose();
    }
    expect(fs.existsSync(sock)).to.equal(false);
  });

  it('a uds_path that is a regular file is refused, and the file is left alone', async () => {
    fs.writeFileSync(path.join(dir, 'file'), 'data');
    let err: Error | undefined;
    await assemble({ udsPath: 'file' }).catch((e: Error) => (err = e));
    expect(err?.message).to.match(/exists and is not a socket/);
    expect(fs.readFileSync(path.join(dir, 'file'), 'utf8')).to.equal('data');
  });
});
