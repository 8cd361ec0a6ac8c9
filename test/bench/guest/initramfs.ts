import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CpioBuilder } from '../../../hosts/guestkit/cpio.js';
import type { GuestKit } from '../../../hosts/guestkit/kit.js';
import { tool } from '../tools.js';

/**
 * The kit's initramfs with a second archive appended (the kernel unpacks both): the guest
 * script as /tsvmm/script (the kit's /init runs it, prints its output between the result
 * markers and powers off) and /bin/guestbench. Same file for both VMMs.
 */
export function benchInitramfs(kit: GuestKit, dir: string, name: string, script: string): string {
  const c = new CpioBuilder();
  c.file('tsvmm/script', `#!/bin/sh\n${script}\n`, 0o755);
  c.file('bin/guestbench', readFileSync(tool('guestbench')), 0o755);
  const out = join(dir, `${name}.initramfs`);
  writeFileSync(out, Buffer.concat([readFileSync(kit.initramfs), c.toGzip()]));
  return out;
}
