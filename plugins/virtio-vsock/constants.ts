/** The host's CID (virtio 1.2 §5.10.4: 2 is the host, the guest gets 3 and up). */
export const HOST_CID = 2n;
/** Bytes of a packet header (struct virtio_vsock_hdr). */
export const HDR_SIZE = 44;
/** Bytes of config space: le64 guest_cid. */
export const VSOCK_CONFIG_SIZE = 8;

/** A driver's read of the config space (le64 guest_cid) at `offset` into `data`; past the end reads zeros. */
export function readVsockConfig(guestCid: bigint, offset: number, data: Uint8Array): void {
  const cfg = new Uint8Array(VSOCK_CONFIG_SIZE);
  new DataView(cfg.buffer).setBigUint64(0, guestCid, true);
  data.fill(0);
  if (offset < 0 || offset >= cfg.length) return;
  data.set(cfg.subarray(offset, Math.min(offset + data.length, cfg.length)));
}
/** Stream sockets, the only type offered (no VIRTIO_VSOCK_F_SEQPACKET). */
export const VSOCK_TYPE_STREAM = 1;

/** Packet operations (§5.10.6). */
export const Op = {
  Request: 1,
  Response: 2,
  Rst: 3,
  Shutdown: 4,
  Rw: 5,
  CreditUpdate: 6,
  CreditRequest: 7,
} as const;

/** SHUTDOWN flags: the sender will receive no more / send no more. */
export const SHUTDOWN_RCV = 1;
/** See SHUTDOWN_RCV. */
export const SHUTDOWN_SEND = 2;

/** Event id of the event queue: the transport was reset (after a restore every connection is gone). */
export const VSOCK_EVENT_TRANSPORT_RESET = 0;

/** Queue indexes. */
export const Queue = { rx: 0, tx: 1, event: 2 } as const;

/** The receive buffer each connection advertises to the guest (its credit). */
export const CONN_BUF_ALLOC = 256 * 1024;
/** Largest payload of one packet either way (the Linux driver's rx buffers are 4 KiB; tx up to 64 KiB). */
export const MAX_PKT_PAYLOAD = 64 * 1024;
/** At most this many connections at once; more are refused with RST. */
export const MAX_CONNECTIONS = 1024;
/** Control packets (RESPONSE, RST, CREDIT_UPDATE ...) waiting for rx buffers at most; past it connections are reset. */
export const MAX_PENDING_CONTROL = 4096;
/** Host-initiated connections: bytes of the `CONNECT <port>\n` line at most. */
export const MAX_CONNECT_LINE = 64;
/** Host-initiated connections: how long the guest has to answer the REQUEST. */
export const CONNECT_TIMEOUT_MS = 2000;
/** Local ports the VMM gives host-initiated connections start here (as Firecracker's). */
export const FIRST_LOCAL_PORT = 1 << 30;
/** Chains served per wake-up before yielding to the event loop. */
export const CHAINS_PER_TURN = 256;
