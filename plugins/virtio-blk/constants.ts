/** virtio-blk protocol constants (virtio 1.2 §5.2). */

/** Feature bits (as bigint masks). */
export const VIRTIO_BLK_F_SIZE_MAX = 1n << 1n;
/** Feature: config space seg_max holds the most segments per request. */
export const VIRTIO_BLK_F_SEG_MAX = 1n << 2n;
/** Feature: the disk is read-only (the driver must not write). */
export const VIRTIO_BLK_F_RO = 1n << 5n;
/** Feature: config space blk_size holds the logical block size. */
export const VIRTIO_BLK_F_BLK_SIZE = 1n << 6n;
/** Feature: FLUSH requests are supported (the disk has a volatile write cache). */
export const VIRTIO_BLK_F_FLUSH = 1n << 9n;
/** Feature: config space num_queues holds the number of request queues. */
export const VIRTIO_BLK_F_MQ = 1n << 12n;
/** Feature: DISCARD requests are supported, within the advertised discard limits. */
export const VIRTIO_BLK_F_DISCARD = 1n << 13n;
/** Feature: WRITE_ZEROES requests are supported, within the advertised limits. */
export const VIRTIO_BLK_F_WRITE_ZEROES = 1n << 14n;

/** Request types. */
export const BlkRequestType = {
  IN: 0,
  OUT: 1,
  FLUSH: 4,
  GET_ID: 8,
  GET_LIFETIME: 10,
  DISCARD: 11,
  WRITE_ZEROES: 13,
  SECURE_ERASE: 14,
} as const;

/** Status byte values. */
export const BlkStatus = { OK: 0, IOERR: 1, UNSUPP: 2 } as const;
/** One BlkStatus value, the byte the device writes at the end of a request. */
export type BlkStatusValue = (typeof BlkStatus)[keyof typeof BlkStatus];

/** virtio-blk's sector: request offsets and lengths count 512-byte units, whatever the logical block size. */
export const SECTOR_SIZE = 512;
/** log2(SECTOR_SIZE), as a bigint for shifting sector numbers. */
export const SECTOR_SHIFT = 9n;
/** struct virtio_blk_req header: le32 type, le32 reserved, le64 sector. */
export const REQUEST_HEADER_SIZE = 16;
/** struct virtio_blk_discard_write_zeroes: le64 sector, le32 num_sectors, le32 flags. */
export const DISCARD_SEGMENT_SIZE = 16;
/** discard/write-zeroes segment flag: the device may deallocate the range (WRITE_ZEROES with unmap). */
export const DISCARD_FLAG_UNMAP = 1;
/** GET_ID answers with up to 20 bytes (not NUL-terminated when all 20 are used). */
export const VIRTIO_BLK_ID_BYTES = 20;

/** Limits the device advertises for discard / write-zeroes. */
export const MAX_DISCARD_SECTORS = 0x3f_ffff; // 2 GiB - 512 per segment
/** Most segments in one DISCARD request the device advertises. */
export const MAX_DISCARD_SEGMENTS = 32;
/** Most sectors per WRITE_ZEROES segment the device advertises (2 GiB - 512 bytes). */
export const MAX_WRITE_ZEROES_SECTORS = 0x3f_ffff;
/** Most segments in one WRITE_ZEROES request the device advertises. */
export const MAX_WRITE_ZEROES_SEGMENTS = 32;

/** Most chains handled per queue wakeup before yielding to the loop. */
export const QUEUE_BUDGET = 256;

/**
 * Largest piece of a read or write handed to the disk at once: a bigger request (a chain may
 * carry up to 4 GiB) goes as consecutive pieces, so a backend that gathers a request's buffers
 * into one host buffer (qcow2 does) allocates at most this much per request in flight.
 * 2 MiB: above the 1280 KiB a Linux guest sends by default (max_sectors_kb), so its requests go whole.
 */
export const MAX_IO_PIECE = 2 << 20;
/**
 * Bytes of read/write pieces one queue keeps in flight (each request counts its current
 * piece): past this a request waits for a completion before it starts. With the queue's
 * in-use bound (at most queue-size chains) this caps what a guest can make the host hold.
 */
export const MAX_INFLIGHT_BYTES = 32 << 20;
