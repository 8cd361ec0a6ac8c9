import type { GuestMemory } from '../../../core/memory/guest-memory.js';
import { GuestAddress } from '../../../core/address.js';
import { X86Layout } from '../layout.js';
import { X86BootError } from '../errors.js';

/**
 * Encodes the kernel command line as the guest reads it: ASCII bytes plus a NUL.
 * `maxLength` is the longest line the kernel accepts, NUL excluded (bzImage:
 * setup_header.cmdline_size); the NUL must also fit CMDLINE_MAX.
 */
export function encodeCmdline(cmdline: string, maxLength: number = X86Layout.CMDLINE_MAX - 1): Uint8Array {
  for (let i = 0; i < cmdline.length; i++) {
    const c = cmdline.charCodeAt(i);
    if (c === 0 || c > 0x7e || (c < 0x20 && c !== 0x09 && c !== 0x0a)) {
      throw new X86BootError(
        'InvalidCmdline',
        `the kernel command line has a character the kernel cannot take (code ${c} at ${i}); use printable ASCII`,
        { index: i, code: c },
      );
    }
  }
  const limit = Math.min(maxLength, X86Layout.CMDLINE_MAX - 1);
  if (cmdline.length > limit) {
    throw new X86BootError(
      'CmdlineTooLong',
      `the kernel command line is ${cmdline.length} bytes; this kernel takes at most ${limit}`,
      { length: cmdline.length, limit },
    );
  }
  const bytes = new Uint8Array(cmdline.length + 1);
  for (let i = 0; i < cmdline.length; i++) bytes[i] = cmdline.charCodeAt(i);
  return bytes;
}

/** Writes the encoded command line at X86Layout.CMDLINE; returns its guest address. */
export function writeCmdline(mem: GuestMemory, encoded: Uint8Array): bigint {
  mem.write(GuestAddress.of(X86Layout.CMDLINE), encoded);
  return X86Layout.CMDLINE;
}
