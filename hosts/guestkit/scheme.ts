import type { Disposable } from '../../core/bus/bus.js';
import { registerHostFileScheme } from '../../core/host/host-files.js';

const KIT_FILES = { vmlinux: 'vmlinux', bzImage: 'bzImage', bzimage: 'bzImage', initramfs: 'initramfs' } as const;
type KitFile = (typeof KIT_FILES)[keyof typeof KIT_FILES];

/**
 * Serves `guestkit:vmlinux`, `guestkit:bzImage` and `guestkit:initramfs` (and the arm64 kit's `guestkit:Image`,
 * `guestkit:arm64-initramfs`) in VM configs: the files of the
 * project's guest kit (cached Debian kernel + busybox initramfs), fetched on first use. The CLI entry
 * (hosts/cli/run-main.ts) registers it; returns what unregisters it.
 */
export function registerGuestKitFiles(): Disposable {
  return registerHostFileScheme('guestkit', async (name, spec) => {
    if (name === 'Image' || name === 'arm64-initramfs') {
      const { arm64GuestKit } = await import('./arm64.js'); // the arm64 kit (hosts/micro-arm64.yaml)
      const kit = arm64GuestKit();
      return name === 'Image' ? kit.image : kit.initramfs;
    }
    const file: KitFile | undefined = KIT_FILES[name as keyof typeof KIT_FILES];
    if (!file)
      throw new Error(
        `unknown guest kit file '${spec}'; use guestkit:vmlinux, guestkit:bzImage, guestkit:initramfs, guestkit:Image or guestkit:arm64-initramfs`,
      );
    const { guestKit } = await import('./kit.js'); // loaded only when a config names the kit
    return (await guestKit())[file];
  });
}
