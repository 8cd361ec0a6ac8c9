/**
 * The vhost-user wire format (QEMU docs/interop/vhost-user.rst): a 12-byte header (request, flags,
 * payload size; little-endian) and the payloads tsvmm's front end sends or reads. Encoders return the
 * whole message; decoders check sizes and throw VhostUserError('Protocol') on a short or wrong reply.
 */
import { VhostUserError } from './errors.js';

/** Front-end requests (the subset tsvmm sends, numbered as in the spec). */
export const Req = {
  GET_FEATURES: 1,
  SET_FEATURES: 2,
  SET_OWNER: 3,
  SET_MEM_TABLE: 5,
  SET_VRING_NUM: 8,
  SET_VRING_ADDR: 9,
  SET_VRING_BASE: 10,
  GET_VRING_BASE: 11,
  SET_VRING_KICK: 12,
  SET_VRING_CALL: 13,
  GET_PROTOCOL_FEATURES: 15,
  SET_PROTOCOL_FEATURES: 16,
  GET_QUEUE_NUM: 17,
  SET_VRING_ENABLE: 18,
  GET_CONFIG: 24,
  GET_INFLIGHT_FD: 31,
  SET_INFLIGHT_FD: 32,
} as const;

/** Names of the requests, for errors and logs. */
export const reqName = (r: number): string => Object.entries(Req).find(([, v]) => v === r)?.[0] ?? `request ${r}`;

/** Header flags: version 1 in bits 0-1, REPLY (bit 2), NEED_REPLY (bit 3). */
export const FLAG_VERSION = 0x1,
  FLAG_REPLY = 0x4,
  FLAG_NEED_REPLY = 0x8;
/** Header size: request u32, flags u32, size u32. */
export const HEADER_SIZE = 12;
/** Largest payload accepted from a back end (GET_CONFIG's 256 bytes of config space + 12). */
export const MAX_PAYLOAD = 4096;

/** Virtio feature bit 30 on the vhost-user socket: the back end speaks protocol features. */
export const VHOST_USER_F_PROTOCOL_FEATURES = 1n << 30n;

/** Protocol feature bits (GET/SET_PROTOCOL_FEATURES). */
export const ProtocolFeature = {
  MQ: 1n << 0n,
  REPLY_ACK: 1n << 3n,
  CONFIG: 1n << 9n,
  INFLIGHT_SHMFD: 1n << 12n,
} as const;

/** Protocol features tsvmm's front end uses when the back end offers them. */
export const SUPPORTED_PROTOCOL_FEATURES = ProtocolFeature.MQ | ProtocolFeature.CONFIG | ProtocolFeature.INFLIGHT_SHMFD;

/** SET_VRING_KICK / SET_VRING_CALL payload bit: no fd is attached (polling). */
export const VRING_NOFD_MASK = 1n << 8n;

/** One region of SET_MEM_TABLE: where it is for the guest, for the front end, and in the fd sent with it. */
export interface MemRegion {
  readonly guestPhysAddr: bigint;
  readonly size: bigint;
  readonly userAddr: bigint;
  readonly mmapOffset: bigint;
  readonly fd: number;
}

/** The vring addresses of SET_VRING_ADDR, in the front end's address space (MemRegion.userAddr). */
export interface VringAddr {
  readonly index: number;
  readonly desc: bigint;
  readonly used: bigint;
  readonly avail: bigint;
}

/** The shared in-flight tracking area (GET/SET_INFLIGHT_FD). */
export interface Inflight {
  readonly mmapSize: bigint;
  readonly mmapOffset: bigint;
  readonly numQueues: number;
  readonly queueSize: number;
}

/** A message: header and payload bytes. */
export function message(req: number, payload: Uint8Array = new Uint8Array(0), flags = FLAG_VERSION): Uint8Array {
  const m = new Uint8Array(HEADER_SIZE + payload.length);
  const dv = new DataView(m.buffer);
  dv.setUint32(0, req, true);
  dv.setUint32(4, flags, true);
  dv.setUint32(8, payload.length, true);
  m.set(payload, HEADER_SIZE);
  return m;
}

/** A u64 payload (features, SET_VRING_KICK's index and flags). */
export function u64(v: bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt.asUintN(64, v), true);
  return b;
}

/** A vring state payload: index and a number (size, base, enable). */
export function vringState(index: number, num: number): Uint8Array {
  const b = new Uint8Array(8);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, index, true);
  dv.setUint32(4, num >>> 0, true);
  return b;
}

/** SET_VRING_ADDR's payload (flags 0: no logging). */
export function vringAddr(a: VringAddr): Uint8Array {
  const b = new Uint8Array(40);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, a.index, true);
  dv.setBigUint64(8, a.desc, true);
  dv.setBigUint64(16, a.used, true);
  dv.setBigUint64(24, a.avail, true);
  return b;
}

/** SET_MEM_TABLE's payload for up to 8 regions (the fds travel beside it, in the same order). */
export function memTable(regions: readonly MemRegion[]): Uint8Array {
  const b = new Uint8Array(8 + 32 * regions.length);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, regions.length, true);
  regions.forEach((r, i) => {
    const o = 8 + 32 * i;
    dv.setBigUint64(o, r.guestPhysAddr, true);
    dv.setBigUint64(o + 8, r.size, true);
    dv.setBigUint64(o + 16, r.userAddr, true);
    dv.setBigUint64(o + 24, r.mmapOffset, true);
  });
  return b;
}

/** GET_CONFIG's request payload: offset, size, flags, then `size` bytes the back end fills. */
export function configRequest(offset: number, size: number): Uint8Array {
  const b = new Uint8Array(12 + size);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, offset, true);
  dv.setUint32(4, size, true);
  return b;
}

/** The inflight payload (24 bytes: QEMU's struct with its tail padding). */
export function inflight(i: Inflight): Uint8Array {
  const b = new Uint8Array(24);
  const dv = new DataView(b.buffer);
  dv.setBigUint64(0, i.mmapSize, true);
  dv.setBigUint64(8, i.mmapOffset, true);
  dv.setUint16(16, i.numQueues, true);
  dv.setUint16(18, i.queueSize, true);
  return b;
}

function need(payload: Uint8Array, n: number, what: string): DataView {
  if (payload.length < n)
    throw new VhostUserError('Protocol', `${what}: reply of ${payload.length} bytes, expected ${n}`, {});
  return new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
}

/** Reads a u64 reply. */
export function readU64(payload: Uint8Array, what: string): bigint {
  return need(payload, 8, what).getBigUint64(0, true);
}

/** Reads a vring state reply (GET_VRING_BASE). */
export function readVringState(payload: Uint8Array, what: string): { index: number; num: number } {
  const dv = need(payload, 8, what);
  return { index: dv.getUint32(0, true), num: dv.getUint32(4, true) };
}

/** Reads GET_CONFIG's reply: the config bytes after the 12-byte prefix. */
export function readConfig(payload: Uint8Array, size: number): Uint8Array {
  need(payload, 12 + size, 'GET_CONFIG');
  return payload.slice(12, 12 + size);
}

/** Reads GET_INFLIGHT_FD's reply. */
export function readInflight(payload: Uint8Array): Inflight {
  const dv = need(payload, 20, 'GET_INFLIGHT_FD');
  return {
    mmapSize: dv.getBigUint64(0, true),
    mmapOffset: dv.getBigUint64(8, true),
    numQueues: dv.getUint16(16, true),
    queueSize: dv.getUint16(18, true),
  };
}
