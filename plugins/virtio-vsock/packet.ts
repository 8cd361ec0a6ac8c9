import { HDR_SIZE } from './constants.js';

/** A virtio-vsock packet header (struct virtio_vsock_hdr, little-endian). */
export interface VsockHeader {
  srcCid: bigint;
  dstCid: bigint;
  srcPort: number;
  dstPort: number;
  /** Payload bytes that follow the header. */
  len: number;
  type: number;
  op: number;
  flags: number;
  bufAlloc: number;
  fwdCnt: number;
}

/** Decodes the 44 header bytes. */
export function decodeHeader(b: Uint8Array): VsockHeader {
  const dv = new DataView(b.buffer, b.byteOffset, HDR_SIZE);
  return {
    srcCid: dv.getBigUint64(0, true),
    dstCid: dv.getBigUint64(8, true),
    srcPort: dv.getUint32(16, true),
    dstPort: dv.getUint32(20, true),
    len: dv.getUint32(24, true),
    type: dv.getUint16(28, true),
    op: dv.getUint16(30, true),
    flags: dv.getUint32(32, true),
    bufAlloc: dv.getUint32(36, true),
    fwdCnt: dv.getUint32(40, true),
  };
}

/** Encodes a header (counters wrap at 2^32, as the driver's). */
export function encodeHeader(h: VsockHeader): Uint8Array {
  const b = new Uint8Array(HDR_SIZE);
  const dv = new DataView(b.buffer);
  dv.setBigUint64(0, BigInt.asUintN(64, h.srcCid), true);
  dv.setBigUint64(8, BigInt.asUintN(64, h.dstCid), true);
  dv.setUint32(16, h.srcPort >>> 0, true);
  dv.setUint32(20, h.dstPort >>> 0, true);
  dv.setUint32(24, h.len >>> 0, true);
  dv.setUint16(28, h.type & 0xffff, true);
  dv.setUint16(30, h.op & 0xffff, true);
  dv.setUint32(32, h.flags >>> 0, true);
  dv.setUint32(36, h.bufAlloc >>> 0, true);
  dv.setUint32(40, h.fwdCnt >>> 0, true);
  return b;
}

/** A packet: its header and payload (`len` bytes for RW, empty otherwise). */
export interface VsockPacket {
  hdr: VsockHeader;
  data: Uint8Array;
}
