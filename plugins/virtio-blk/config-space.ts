import {
  MAX_DISCARD_SECTORS,
  MAX_DISCARD_SEGMENTS,
  MAX_WRITE_ZEROES_SECTORS,
  MAX_WRITE_ZEROES_SEGMENTS,
  SECTOR_SIZE,
} from './constants.js';

/** struct virtio_blk_config (virtio 1.2 §5.2.4), up to write_zeroes_may_unmap and its padding. */
export const BlkConfigLayout = {
  capacity: 0, // le64, in 512-byte sectors
  sizeMax: 8, // le32
  segMax: 12, // le32
  geometry: 16, // cylinders le16, heads u8, sectors u8
  blkSize: 20, // le32
  topology: 24, // physical_block_exp u8, alignment_offset u8, min_io_size le16, opt_io_size le32
  writeback: 32, // u8
  numQueues: 34, // le16
  maxDiscardSectors: 36,
  maxDiscardSeg: 40,
  discardSectorAlignment: 44,
  maxWriteZeroesSectors: 48,
  maxWriteZeroesSeg: 52,
  writeZeroesMayUnmap: 56, // u8, then 3 bytes of padding
} as const;
/** Bytes of the virtio-blk config space the device exposes (up to write_zeroes_may_unmap and its padding). */
export const BLK_CONFIG_SIZE = 60;

/** The config space fields that vary per device: capacity, block size, segment limit, queue count. */
export interface BlkConfigValues {
  /** Disk size in bytes (the tail below a whole sector is not exposed). */
  diskSize: bigint;
  blockSize: number;
  segMax: number;
  numQueues: number;
}

/** Builds the read-only config space bytes. */
export function buildConfigSpace(v: BlkConfigValues): Uint8Array {
  const b = new Uint8Array(BLK_CONFIG_SIZE);
  const dv = new DataView(b.buffer);
  const L = BlkConfigLayout;
  dv.setBigUint64(L.capacity, v.diskSize / BigInt(SECTOR_SIZE), true);
  dv.setUint32(L.sizeMax, 0, true);
  dv.setUint32(L.segMax, v.segMax, true);
  dv.setUint32(L.blkSize, v.blockSize, true);
  dv.setUint16(L.numQueues, v.numQueues, true);
  dv.setUint32(L.maxDiscardSectors, MAX_DISCARD_SECTORS, true);
  dv.setUint32(L.maxDiscardSeg, MAX_DISCARD_SEGMENTS, true);
  dv.setUint32(L.discardSectorAlignment, Math.max(1, v.blockSize / SECTOR_SIZE), true);
  dv.setUint32(L.maxWriteZeroesSectors, MAX_WRITE_ZEROES_SECTORS, true);
  dv.setUint32(L.maxWriteZeroesSeg, MAX_WRITE_ZEROES_SEGMENTS, true);
  dv.setUint8(L.writeZeroesMayUnmap, 1);
  return b;
}
