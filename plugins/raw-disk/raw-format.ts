import type { DiskBackend, DiskFormat, DiskOpenOptions, DiskShape } from '../../core/block/disk.js';
import { RawFileDisk } from './raw-disk.js';

/**
 * The raw format: the file's bytes are the disk's bytes. `probe` accepts anything,
 * so format auto-detection must try every other format first and fall back to raw
 * (see pickDiskFormat in plugins/virtio-blk/open-disk.ts).
 */
export class RawDiskFormat implements DiskFormat {
  readonly name = 'raw';
  probe(_header: Uint8Array): boolean {
    return true;
  }
  async open(opts: DiskOpenOptions): Promise<DiskBackend> {
    return RawFileDisk.open(opts);
  }
  async describe(opts: DiskOpenOptions): Promise<DiskShape> {
    return RawFileDisk.describe(opts);
  }
}
