import { VNET_HDR_F_NEEDS_CSUM, VNET_HDR_SIZE } from './constants.js';

/** struct virtio_net_hdr (VERSION_1 layout, little-endian, 12 bytes). */
export interface VnetHeader {
  flags: number;
  gsoType: number;
  hdrLen: number;
  gsoSize: number;
  csumStart: number;
  csumOffset: number;
  numBuffers: number;
}

/** A header with every field 0: no checksum or GSO work, num_buffers not yet set. */
export const emptyHeader = (): VnetHeader => ({
  flags: 0,
  gsoType: 0,
  hdrLen: 0,
  gsoSize: 0,
  csumStart: 0,
  csumOffset: 0,
  numBuffers: 0,
});

/** Reads the first 12 bytes of `b` as a virtio_net_hdr; throws RangeError when `b` is shorter. */
export function decodeHeader(b: Uint8Array): VnetHeader {
  if (b.length < VNET_HDR_SIZE) throw new RangeError(`a virtio-net header is ${VNET_HDR_SIZE} bytes, got ${b.length}`);
  const dv = new DataView(b.buffer, b.byteOffset, VNET_HDR_SIZE);
  return {
    flags: dv.getUint8(0),
    gsoType: dv.getUint8(1),
    hdrLen: dv.getUint16(2, true),
    gsoSize: dv.getUint16(4, true),
    csumStart: dv.getUint16(6, true),
    csumOffset: dv.getUint16(8, true),
    numBuffers: dv.getUint16(10, true),
  };
}

/** Writes `h` into the first 12 bytes of `into` (a fresh buffer by default) and returns it. */
export function encodeHeader(h: VnetHeader, into = new Uint8Array(VNET_HDR_SIZE)): Uint8Array {
  const dv = new DataView(into.buffer, into.byteOffset, VNET_HDR_SIZE);
  dv.setUint8(0, h.flags & 0xff);
  dv.setUint8(1, h.gsoType & 0xff);
  dv.setUint16(2, h.hdrLen & 0xffff, true);
  dv.setUint16(4, h.gsoSize & 0xffff, true);
  dv.setUint16(6, h.csumStart & 0xffff, true);
  dv.setUint16(8, h.csumOffset & 0xffff, true);
  dv.setUint16(10, h.numBuffers & 0xffff, true);
  return into;
}

/** Sets num_buffers (bytes 10..11) of an encoded header in place. */
export function setNumBuffers(hdr: Uint8Array, n: number): void {
  hdr[10] = n & 0xff;
  hdr[11] = (n >> 8) & 0xff;
}

/**
 * Completes a partial checksum the way the device does for VIRTIO_NET_HDR_F_NEEDS_CSUM
 * (§5.1.6.2): the ones' complement sum from csum_start to the end of the frame,
 * folded, complemented and stored at csum_start + csum_offset (the driver already put
 * the pseudo-header sum there). Returns false (frame untouched) when the offsets
 * do not fit the frame — a hostile header.
 */
export function completeChecksum(frame: Uint8Array, csumStart: number, csumOffset: number): boolean {
  const at = csumStart + csumOffset;
  if (csumStart >= frame.length || at + 2 > frame.length) return false;
  let sum = 0;
  let i = csumStart;
  for (; i + 1 < frame.length; i += 2) sum += (frame[i] << 8) | frame[i + 1];
  if (i < frame.length) sum += frame[i] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  const c = ~sum & 0xffff;
  frame[at] = c >> 8;
  frame[at + 1] = c & 0xff;
  return true;
}

/** Whether the header asks the device to finish the checksum. */
export const needsChecksum = (h: VnetHeader): boolean => (h.flags & VNET_HDR_F_NEEDS_CSUM) !== 0;
