import type { KernelCmdline } from './resources.js';
import { PlatformError } from './errors.js';

/**
 * A sanity cap on the command line's size in bytes (NUL included). The machine's boot loader enforces
 * its boot protocol's own limit when it writes the line into the guest.
 */
export const DEFAULT_CMDLINE_MAX = 0x10000;

/** The kernel command line: the config's base plus fragments devices append (e.g. virtio_mmio.device=...). */
export class CmdlineBuilder implements KernelCmdline {
  private readonly parts: string[] = [];

  constructor(
    base = '',
    private readonly max: number = DEFAULT_CMDLINE_MAX,
  ) {
    if (base.trim()) this.append(base);
  }

  append(fragment: string): void {
    const f = fragment.trim();
    if (!f) return;
    if (/[\0\n\r]/.test(f))
      throw new PlatformError('Invalid', `kernel command line fragment ${JSON.stringify(f)} has a NUL or newline`, {
        fragment: f,
      });
    const next = [...this.parts, f].join(' ');
    if (Buffer.byteLength(next) + 1 > this.max) {
      throw new PlatformError('Exhausted', `kernel command line would exceed ${this.max - 1} bytes`, { fragment: f });
    }
    this.parts.push(f);
  }

  toString(): string {
    return this.parts.join(' ');
  }
}
