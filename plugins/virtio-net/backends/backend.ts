import type { HostIovec } from '../iovec.js';

/**
 * What the virtio-net device needs from a network backend (tap, datagram socket,
 * an in-memory double). Each queue pair has one fd the device watches on the main
 * event loop; the device reads until the backend says nothing is waiting, so
 * readiness may be level-triggered (uv_poll) or a hint.
 */
export interface NetBackend {
  /** Mechanism: 'tap', 'unix-dgram', 'udp', 'memory'. */
  readonly kind: string;
  /** Human-readable endpoint for logs (tap name, socket path/address). */
  readonly description: string;
  /** Queue pairs the backend serves (one fd each). */
  readonly queuePairs: number;
  /** Frames carry a 12-byte virtio_net_hdr (VERSION_1 layout) before the Ethernet header. */
  readonly vnetHeader: boolean;
  /** Offloads the backend can carry (only meaningful with vnetHeader). */
  readonly offloads: BackendOffloads;
  /** The fd to watch for queue pair `queue` (a fake number for doubles). */
  fd(queue: number): number;
  /**
   * Sends one frame (with the header when vnetHeader). false when the backend had
   * no room (the frame is lost, like a full NIC queue). Throws NetBackendError when
   * the backend refused it (bad header, device gone).
   */
  send(queue: number, frame: Uint8Array): boolean;
  /**
   * Optional zero-copy send: one frame (header included when vnetHeader) gathered from
   * host addresses (guest RAM) in `iov`, in one call. Same results as send().
   */
  sendv?(queue: number, iov: HostIovec): boolean;
  /**
   * Reads one frame into `buf` (header included when vnetHeader). Returns its length,
   * which may exceed buf.length when the frame was truncated (the device drops it);
   * -1 when none is waiting. Throws NetBackendError on failure.
   */
  recv(queue: number, buf: Uint8Array): number;
  /** Which guest offloads the backend may deliver (TUNSETOFFLOAD); no-op without a header. */
  setGuestOffloads(o: GuestOffloads): void;
  /** The driver uses only the first `n` pairs (MQ VQ_PAIRS_SET): detach the others where possible. */
  setActiveQueuePairs?(n: number): void;
  close(): void;
}

/** Offloads of a backend with a vnet header: host side (frames the guest sends) and guest side (frames it gets). */
export interface BackendOffloads {
  /** Accepts frames with a partial checksum (NEEDS_CSUM) and GSO TCP v4/v6 (+ECN) / UFO. */
  readonly host: { csum: boolean; tso4: boolean; tso6: boolean; ecn: boolean; ufo: boolean };
  /** Can deliver frames with partial checksums / GSO to the guest when asked. */
  readonly guest: { csum: boolean; tso4: boolean; tso6: boolean; ecn: boolean; ufo: boolean };
}

/**
 * The guest offloads the driver enabled (features it negotiated, narrowed by CTRL_GUEST_OFFLOADS): what the backend may
 * hand the guest.
 */
export interface GuestOffloads {
  csum: boolean;
  tso4: boolean;
  tso6: boolean;
  ecn: boolean;
  ufo: boolean;
}

/** The offloads of a backend without a vnet header: none either way. */
export const NO_OFFLOADS: BackendOffloads = {
  host: { csum: false, tso4: false, tso6: false, ecn: false, ufo: false },
  guest: { csum: false, tso4: false, tso6: false, ecn: false, ufo: false },
};
