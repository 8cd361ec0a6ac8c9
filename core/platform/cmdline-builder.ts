import type { KernelCmdline } from './resources.js';
import { X86Layout } from './x86-layout.js';
import { PlatformError } from './errors.js';

/** The kernel command line: the config's base plus fragments devices append (e.g. virtio_mmio.device=...). */
export class CmdlineBuilder implements KernelCmdline {
  private readonly parts: string[] = [];

  constructor(
    base = '',
    private readonly max: number = X86Layout.CMDLINE_MAX,
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
