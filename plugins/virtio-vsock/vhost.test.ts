import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { assembleDeviceVm } from '../../core/testing/test-plugins.js';
import { VhostIoctl, VhostKernel } from '../vhost-user/kernel.js';
import { VirtioVsockConfigSchema } from './config.js';

/**
 * The vhost-vsock back end's host side without the kernel device (this host has none; the linux tier runs it:
 * vhost.linux.test.ts): the ioctl numbers, the config, and the errors when the device is missing.
 */
describe('virtio-vsock with the kernel vhost-vsock back end: ioctls, config, errors', () => {
  it('the vhost ioctl numbers are linux/vhost.h values', () => {
    // printed by a C program including <linux/vhost.h>
    expect(VhostIoctl).to.deep.equal({
      GET_FEATURES: 0x8008af00,
      SET_FEATURES: 0x4008af00,
      SET_OWNER: 0xaf01,
      SET_MEM_TABLE: 0x4008af03,
      SET_VRING_NUM: 0x4008af10,
      SET_VRING_ADDR: 0x4028af11,
      SET_VRING_BASE: 0x4008af12,
      GET_VRING_BASE: 0xc008af12,
      SET_VRING_KICK: 0x4008af20,
      SET_VRING_CALL: 0x4008af21,
      VSOCK_SET_GUEST_CID: 0x4008af60,
      VSOCK_SET_RUNNING: 0x4004af61,
    });
  });

  it('config: backend unix needs udsPath; vhost does not, and defaults to /dev/vhost-vsock', () => {
    const bad = VirtioVsockConfigSchema.safeParse({ guestCid: 3 });
    expect(bad.success).to.equal(false);
    expect(bad.error?.issues[0]?.message).to.match(/unix back end needs udsPath/);
    const ok = VirtioVsockConfigSchema.parse({ backend: 'vhost' });
    expect(ok.vhostDevice).to.equal('/dev/vhost-vsock');
    expect(VirtioVsockConfigSchema.parse({ udsPath: 'v.sock' }).backend).to.equal('unix');
  });

  it('a missing device is one clear error naming the module; assembly fails with it', async () => {
    expect(() => VhostKernel.open('/nonexistent/vhost-vsock')).to.throw(
      /cannot open \/nonexistent\/vhost-vsock: ENOENT .*vhost_vsock/,
    );
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vhost-vsock-'));
    try {
      const err = await assembleDeviceVm(dir, [
        { name: 'virtio-vsock', id: 'vsock0', config: { backend: 'vhost', vhostDevice: path.join(dir, 'none') } },
      ]).then(
        (vm) => vm.dispose().then(() => undefined),
        (e: Error) => e,
      );
      expect(err?.message).to.match(/cannot open .*none: ENOENT/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a character device that is not vhost refuses SET_OWNER: the error names the ioctl', () => {
    expect(() => VhostKernel.open('/dev/null')).to.throw(/\/dev\/null: VHOST_SET_OWNER failed: E/);
  });
});
