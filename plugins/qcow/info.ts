import { COMPAT_LAZY_REFCOUNTS, INCOMPAT_CORRUPT, INCOMPAT_DIRTY } from './header.js';
import { openQcow2 } from './open.js';

/** What `vmm image info` reports about a qcow2 image (sizes in bytes; actualSize is the file's length). */
export interface ImageInfo {
  filename: string;
  format: 'qcow2';
  virtualSize: number;
  actualSize: number;
  clusterSize: number;
  version: 2 | 3;
  refcountBits: number;
  compressionType: 'zlib' | 'zstd';
  lazyRefcounts: boolean;
  dirty: boolean;
  corrupt: boolean;
  backingFile?: string;
  backingFormat?: string;
  snapshots: number;
}

/** Reads the header of an image (without following its backing file). */
export async function imageInfo(path: string, o: { forceShare?: boolean } = {}): Promise<ImageInfo> {
  const img = await openQcow2({ path, readOnly: true, forCheck: true, skipBacking: true, forceShare: o.forceShare });
  try {
    const h = img.header;
    return {
      filename: path,
      format: 'qcow2',
      virtualSize: h.size,
      actualSize: img.file.size,
      clusterSize: img.cs,
      version: h.version,
      refcountBits: 2 ** h.refcountOrder,
      compressionType: h.compressionType === 1 ? 'zstd' : 'zlib',
      lazyRefcounts: (h.compatible & COMPAT_LAZY_REFCOUNTS) !== 0n,
      dirty: (h.incompatible & INCOMPAT_DIRTY) !== 0n,
      corrupt: (h.incompatible & INCOMPAT_CORRUPT) !== 0n,
      backingFile: h.backingFile,
      backingFormat: h.backingFormat,
      snapshots: h.nbSnapshots,
    };
  } finally {
    await img.close();
  }
}
