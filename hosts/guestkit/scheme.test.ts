import { expect } from 'chai';
import { RegisteredHostFiles } from '../../core/host/host-files.js';
import { registerGuestKitFiles } from './scheme.js';

describe('guestkit: boot files served to VM configs', () => {
  it('registers the guestkit scheme; an unknown kit file is refused naming the known ones', async () => {
    const files = new RegisteredHostFiles();
    expect(await files.resolve('guestkit:zImage')).to.equal(undefined);
    const reg = registerGuestKitFiles();
    try {
      const err = await files.resolve('guestkit:zImage').catch((e: unknown) => e);
      expect((err as Error).message).to.equal(
        "cannot get 'guestkit:zImage': unknown guest kit file 'guestkit:zImage'; " +
          'use guestkit:vmlinux, guestkit:bzImage, guestkit:initramfs, guestkit:Image or guestkit:arm64-initramfs',
      );
    } finally {
      reg.dispose();
    }
  });
});
