import type { DiskBackend, DiskFormat, DiskOpenOptions } from '../../core/block/disk.js';
import { openQcow2, probeQcow2 } from './open.js';

/** The 'qcow2' DiskFormat: virtio-blk (or any block model) opens images through it. */
export class Qcow2Format implements DiskFormat {
  readonly name = 'qcow2';

  probe(header: Uint8Array): boolean {
    return probeQcow2(header);
  }

  open(opts: DiskOpenOptions): Promise<DiskBackend> {
    return openQcow2(opts);
  }
}
