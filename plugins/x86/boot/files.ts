import { closeSync } from 'node:fs';
import { openBootFile } from '../../../core/host/boot-files.js';
import { markStartup } from '../../../core/vmm/timings.js';
import { fileBootImage, type BootImage } from './image.js';

/**
 * Opens the kernel (and the initramfs) and lends `use` a BootImage of each: the loaders read the headers in small
 * pieces and pread the loadable bytes straight into guest memory, so a 50 MB vmlinux is never held in the VMM (it
 * was: 52 MB of a micro VM's 128 MB above guest RAM) and is copied once, not twice. The files are closed as soon as
 * `use` returns or throws; the images are invalid after that. Errors name the file (core/host/boot-files.ts).
 */
export function withBootFiles<T>(
  files: { kernel: string; initramfs?: string },
  use: (kernel: BootImage, initramfs: BootImage | undefined) => T,
): T {
  const fds: number[] = [];
  const open = (path: string, what: string): BootImage => {
    const { fd, size } = openBootFile(path, what);
    fds.push(fd);
    markStartup(`${what} opened (${size} bytes)`);
    return fileBootImage(fd, size, what, path);
  };
  try {
    const kernel = open(files.kernel, 'kernel');
    const initramfs = files.initramfs ? open(files.initramfs, 'initramfs') : undefined;
    return use(kernel, initramfs);
  } finally {
    for (const fd of fds) closeSync(fd);
  }
}
