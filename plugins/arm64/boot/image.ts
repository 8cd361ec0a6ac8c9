/**
 * The arm64 Linux `Image` header (Documentation/arch/arm64/booting.rst): a 64-byte header at the start
 * of the uncompressed kernel with its text offset, its full size in memory (BSS included), its flags and
 * the magic "ARM\x64". Everything is checked before the machine writes a byte into the guest.
 */
import { Arm64Error } from '../errors.js';

/** The header's magic (little-endian "ARM\x64") at byte 56. */
export const ARM64_IMAGE_MAGIC = 0x644d5241;
/** The header's size in bytes. */
export const ARM64_IMAGE_HEADER_SIZE = 64;
const MIB2 = 2n << 20n;

/** The page size a kernel says it was built for (flags bits 1-2), or 'unspecified'. */
export type Arm64PageSize = 'unspecified' | '4K' | '16K' | '64K';

/** A checked Image header. */
export interface Arm64ImageHeader {
  /** Where in its 2 MiB-aligned block the kernel must be loaded. */
  readonly textOffset: bigint;
  /** The bytes the kernel occupies from its load address (file + BSS + early page tables). */
  readonly imageSize: bigint;
  readonly pageSize: Arm64PageSize;
  /** flags bit 3: the kernel may sit anywhere in RAM (else as close to RAM's start as possible). */
  readonly placementAnywhere: boolean;
}

/**
 * Parses and checks an Image header: magic, little-endian kernel, a known page size field, a text offset
 * inside a 2 MiB block, an image_size that covers the file. A gzip stream or an EFI zboot image gets
 * its own message (they must be decompressed first).
 */
export function parseArm64Image(image: Uint8Array): Arm64ImageHeader {
  const bad = (why: string) =>
    new Arm64Error('BadImage', `not a bootable arm64 Image: ${why}`, { length: image.length });
  if (image.length >= 2 && image[0] === 0x1f && image[1] === 0x8b)
    throw bad('it is gzip-compressed (Debian vmlinuz): decompress it first');
  if (image.length < ARM64_IMAGE_HEADER_SIZE) throw bad(`${image.length} bytes is shorter than the 64-byte header`);
  const v = new DataView(image.buffer, image.byteOffset, image.byteLength);
  if (v.getUint32(56, true) !== ARM64_IMAGE_MAGIC) {
    if (image[0] === 0x4d && image[1] === 0x5a && Buffer.from(image.subarray(4, 8)).toString('latin1') === 'zimg')
      throw bad('it is an EFI zboot image: extract its payload first');
    throw bad('no "ARM\\x64" magic at byte 56');
  }
  const textOffset = v.getBigUint64(8, true);
  const imageSize = v.getBigUint64(16, true);
  const flags = v.getBigUint64(24, true);
  if (imageSize === 0n) throw bad('image_size is 0 (a kernel older than 3.17, not supported)');
  if (flags & 1n) throw bad('the kernel is big-endian');
  if (flags >> 4n) throw bad(`unknown flag bits 0x${(flags >> 4n).toString(16)}0`);
  if (textOffset >= MIB2 || textOffset % 4096n)
    throw bad(`text_offset 0x${textOffset.toString(16)} is not a page in a 2 MiB block`);
  if (imageSize < BigInt(image.length))
    throw bad(`image_size ${imageSize} is smaller than the ${image.length}-byte file`);
  if (imageSize > 1n << 32n) throw bad(`image_size ${imageSize} is implausibly large`);
  const pageSize = (['unspecified', '4K', '16K', '64K'] as const)[Number((flags >> 1n) & 3n)];
  return { textOffset, imageSize, pageSize, placementAnywhere: (flags & 8n) !== 0n };
}
