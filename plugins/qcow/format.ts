import type { DiskBackend, DiskFormat, DiskOpenOptions, DiskShape } from '../../core/block/disk.js';
import { openQcow2, probeQcow2, qcow2VirtualSize } from './open.js';

/** The 'qcow2' DiskFormat: virtio-blk (or any block model) opens images through it. */
export class Qcow2Format implements DiskFormat {
  readonly name = 'qcow2';

  probe(header: Uint8Array): boolean {
    return probeQcow2(header);
  }

  open(opts: DiskOpenOptions): Promise<DiskBackend> {
    return openQcow2(opts);
  }

  /** The header's virtual size; the rest as Qcow2Image sets it (512-byte blocks; discard, write-zeroes if writable). */
  async describe(opts: DiskOpenOptions): Promise<DiskShape> {
    const size = await qcow2VirtualSize(opts.path);
    const writable = !opts.readOnly;
    return { size, readOnly: opts.readOnly, blockSize: 512, supportsDiscard: writable, supportsWriteZeroes: writable };
  }
}
